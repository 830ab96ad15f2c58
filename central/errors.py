"""The one exception tree of the ``central`` package."""

from __future__ import annotations

from foundation.errors import ConfigError, ProductError


class CentralError(ProductError):
    """Root of every error raised by central."""


class CentralConfigError(CentralError, ConfigError):
    """The central configuration file is missing or invalid."""

    kind = "central"


class DatabaseError(CentralError, OSError):
    """The central database cannot be reached or used."""


class NotFoundError(CentralError, LookupError):
    """A reservation, device or token that does not exist."""


class ConflictError(CentralError, ValueError):
    """A change that contradicts the stored state (e.g. editing a cancelled reservation)."""


class IssuanceRefused(CentralError):
    """An issuance request refused with one of the contract's error codes
    (:data:`contracts.issuance.ERROR_CODES`); ``opens_at`` goes with
    ``outside_hours``."""

    def __init__(self, code: str, message: str, opens_at: object = None) -> None:
        self.code = code
        self.message = message
        self.opens_at = opens_at
        super().__init__(f"{code}: {message}")


class RegistryError(CentralError):
    """The resident registry cannot be used (missing file, bad record)."""


class SchemaVersionError(DatabaseError):
    """The database's schema revision is not the one this version of central
    needs (older, newer, or none on an existing database)."""

    def __init__(self, message: str, revision: str | None, head: str) -> None:
        self.revision = revision
        self.head = head
        super().__init__(message)


class BookingRefused(CentralError):
    """A booking, cancellation, move or import row refused by a rule or by the
    database: ``code`` is a :data:`central.reservations.rules.RefusalCode` or
    one of the service's own (``unknown_room``, ``unknown_member``, ...),
    ``values`` what its message needs."""

    def __init__(self, code: str, message: str, values: dict[str, str | int] | None = None):
        self.code = code
        self.message = message
        self.values = dict(values or {})
        super().__init__(f"{code}: {message}")


class EnrolmentRefused(CentralError):
    """A card enrolment step refused with one of
    :data:`contracts.enrolment.ERROR_CODES`."""

    def __init__(self, code: str, message: str, retry_after: int | None = None) -> None:
        self.code = code
        self.message = message
        self.retry_after = retry_after
        super().__init__(f"{code}: {message}")
