"""The kiosk package's exception tree (one root; leaves also subclass a builtin)."""

from __future__ import annotations

from datetime import datetime

from foundation.errors import ProductError


class KioskError(ProductError):
    """Root of the kiosk package's errors."""


class LockUnavailable(KioskError, ConnectionError):
    """The lock controller did not take the unlock (not running, refused)."""


class DoorInLockdown(KioskError):
    """The lock controller refused the unlock: staff put the door in lockdown
    from the office (a remote ``door.lockdown``); it stays locked."""


class CentralError(KioskError):
    """Root of the errors of central's services (issuance, enrolment), as the kiosk sees them."""


class CentralUnreachable(CentralError, ConnectionError):
    """Central did not answer (network, TLS, timeout, 5xx): nothing was decided."""


class CentralRefused(CentralError):
    """Central refused the request; ``code`` is one of the contract's ERROR_CODES."""

    def __init__(self, code: str, message: str = "", opens_at: datetime | None = None) -> None:
        self.code = code
        self.opens_at = opens_at
        super().__init__(f"central refused: {code}" + (f" ({message})" if message else ""))


class EnrolmentRefused(CentralRefused):
    """Central refused a card enrolment; ``code`` is one of
    ``contracts.enrolment.ERROR_CODES``. Each code has its own subclass
    (:data:`ENROLMENT_REFUSALS`) so callers can catch the ones they handle."""

    def __init__(self, code: str, message: str = "", retry_after_seconds: int | None = None):
        self.retry_after_seconds = retry_after_seconds
        super().__init__(code, message)


class CodeInvalid(EnrolmentRefused):
    """No such enrolment code (or it was typed wrong)."""


class CodeExpired(EnrolmentRefused):
    """The enrolment code's time ran out."""


class CodeUsed(EnrolmentRefused):
    """The enrolment code was redeemed already."""


class TicketInvalid(EnrolmentRefused):
    """The enrolment ticket is unknown, expired or another device's."""


class MemberSuspended(EnrolmentRefused):
    """The membership is suspended."""


class CardBoundElsewhere(EnrolmentRefused):
    """The card is enrolled to another member."""


class CardLimit(EnrolmentRefused):
    """The member has as many active cards as allowed."""


class TooManyAttempts(EnrolmentRefused):
    """This device typed too many wrong codes; ``retry_after_seconds`` says how long to wait."""


class DeviceUnknown(EnrolmentRefused):
    """Central does not know this device's certificate."""


class RequestInvalid(EnrolmentRefused):
    """Central found the request outside the contract (a device bug)."""


class EnrolmentServiceUnavailable(EnrolmentRefused):
    """Central's database is down: nothing was decided, retry later."""


ENROLMENT_REFUSALS: dict[str, type[EnrolmentRefused]] = {
    "code_invalid": CodeInvalid,
    "code_expired": CodeExpired,
    "code_used": CodeUsed,
    "ticket_invalid": TicketInvalid,
    "member_suspended": MemberSuspended,
    "card_bound_elsewhere": CardBoundElsewhere,
    "card_limit": CardLimit,
    "too_many_attempts": TooManyAttempts,
    "device_unknown": DeviceUnknown,
    "request_invalid": RequestInvalid,
    "service_unavailable": EnrolmentServiceUnavailable,
}


def enrolment_refusal(
    code: str, message: str = "", retry_after_seconds: int | None = None
) -> EnrolmentRefused:
    """The typed error for a refusal code (the base class for a code this
    build does not know, so a newer central never crashes an older kiosk)."""
    return ENROLMENT_REFUSALS.get(code, EnrolmentRefused)(code, message, retry_after_seconds)
