"""The one exception tree of the ``cardreader`` package.

Every error carries a message for the person in front of the kiosk or the
technician (what happened, what to do). Leaves also subclass a builtin so
callers that know nothing of ours still catch them sensibly.
"""

from __future__ import annotations

from foundation.errors import ProductError


class CardReaderError(ProductError):
    """Root of every error raised by the cardreader package."""


class ServiceUnavailableError(CardReaderError, ConnectionError):
    """pcscd is not running or not reachable."""

    def __init__(self, detail: str = "") -> None:
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"the PC/SC service (pcscd) is not running{extra}: start it (systemctl start pcscd)"
        )


class NoReaderError(CardReaderError, LookupError):
    """No card reader is connected, or none matches the configured name."""

    def __init__(self, wanted: str = "") -> None:
        self.wanted = wanted
        what = f"matching {wanted!r} " if wanted else ""
        super().__init__(f"no card reader {what}is connected: check the USB cable")


class NoCardError(CardReaderError, LookupError):
    """No card is in the reader."""

    def __init__(self, reader: str) -> None:
        self.reader = reader
        super().__init__(f"no card on reader {reader!r}: place the card on the reader")


class CardRemovedError(CardReaderError, ConnectionError):
    """The card was removed (or reset) while it was being used."""

    def __init__(self, reader: str = "") -> None:
        self.reader = reader
        super().__init__("the card was removed during the operation: place it again and retry")


class CardBusyError(CardReaderError, PermissionError):
    """Another program holds the card exclusively."""

    def __init__(self, reader: str) -> None:
        self.reader = reader
        super().__init__(f"the card on {reader!r} is in use by another program; try again")


class CardTimeoutError(CardReaderError, TimeoutError):
    """The card did not answer one APDU in time."""

    def __init__(self, command: str, seconds: float) -> None:
        self.command = command
        self.seconds = seconds
        super().__init__(f"the card did not answer {command} within {seconds:g} s")


class TransportError(CardReaderError, OSError):
    """PC/SC reported an error we do not map more precisely."""

    def __init__(self, operation: str, code: int, text: str) -> None:
        self.operation = operation
        self.code = code
        super().__init__(f"PC/SC {operation} failed: {text} (0x{code & 0xFFFFFFFF:08X})")


class MalformedResponseError(CardReaderError, ValueError):
    """The card answered something that cannot be parsed."""

    def __init__(self, what: str) -> None:
        super().__init__(f"the card gave a malformed answer: {what}")


class StatusWordError(CardReaderError):
    """The card answered with a status word the operation did not expect."""

    def __init__(self, command: str, sw: int, meaning: str = "") -> None:
        self.command = command
        self.sw = sw
        about = f" ({meaning})" if meaning else ""
        super().__init__(f"the card refused {command}: status {sw:04X}{about}")


class SecurityStatusError(StatusWordError, PermissionError):
    """6982: the operation needs a PIN that has not been verified."""


class ForbiddenCommandError(CardReaderError, PermissionError):
    """A command we must never send (e.g. selecting the My Number AP)."""


class UnknownCardError(CardReaderError, ValueError):
    """The card is neither a My Number Card nor a supported member card."""

    def __init__(self) -> None:
        super().__init__("this card is not supported: use a My Number Card or a member card")


class NotMyNumberCardError(CardReaderError, ValueError):
    """A My Number Card (JPKI) operation was asked of another card."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        super().__init__(f"this is not a My Number Card (it is {kind}): use a My Number Card")


class PinError(CardReaderError):
    """Root of the PIN outcomes that are not success."""


class PinFormatError(PinError, ValueError):
    """The PIN is not 4 digits; nothing was sent to the card."""

    def __init__(self) -> None:
        super().__init__("the PIN must be exactly 4 digits (0-9); nothing was sent to the card")


class WrongPinError(PinError, PermissionError):
    """The card rejected the PIN; ``tries_left`` tries remain."""

    def __init__(self, tries_left: int) -> None:
        self.tries_left = tries_left
        warn = " One more wrong PIN blocks the card." if tries_left == 1 else ""
        super().__init__(f"wrong PIN: {tries_left} tries left.{warn}")


class PinBlockedError(PinError, PermissionError):
    """The PIN is blocked; only the municipal office can reset it."""

    def __init__(self) -> None:
        super().__init__(
            "the PIN is blocked after too many wrong entries: "
            "it can be reset at the city office window (no PIN was sent)"
        )


class CertificateError(CardReaderError, ValueError):
    """The card's certificate cannot be used."""


class CertificateExpiredError(CertificateError):
    """The user-authentication certificate has expired."""

    def __init__(self, not_after: str) -> None:
        self.not_after = not_after
        super().__init__(
            f"the card's certificate expired on {not_after}: renew it at the city office"
        )


class CertificateRevokedError(CertificateError):
    """The certificate is on the revocation list."""

    def __init__(self) -> None:
        super().__init__("the card's certificate has been revoked: ask at the city office")


class CredentialKeyError(CardReaderError, ValueError):
    """The key for credential references is missing or unusable."""
