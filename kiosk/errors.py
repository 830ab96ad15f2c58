"""The kiosk package's exception tree (one root; leaves also subclass a builtin)."""

from __future__ import annotations


class KioskError(Exception):
    """Root of the kiosk package's errors."""


class LockUnavailable(KioskError, ConnectionError):
    """The lock controller did not take the unlock (not running, refused)."""
