"""The kiosk package's exception tree (one root; leaves also subclass a builtin)."""

from __future__ import annotations

from datetime import datetime

from foundation.errors import ProductError


class KioskError(ProductError):
    """Root of the kiosk package's errors."""


class LockUnavailable(KioskError, ConnectionError):
    """The lock controller did not take the unlock (not running, refused)."""


class CentralError(KioskError):
    """Root of the errors of central's issuance service, as the kiosk sees them."""


class CentralUnreachable(CentralError, ConnectionError):
    """Central did not answer (network, TLS, timeout, 5xx): nothing was decided."""


class CentralRefused(CentralError):
    """Central refused the request; ``code`` is one of the contract's ERROR_CODES."""

    def __init__(self, code: str, message: str = "", opens_at: datetime | None = None) -> None:
        self.code = code
        self.opens_at = opens_at
        super().__init__(f"central refused: {code}" + (f" ({message})" if message else ""))
