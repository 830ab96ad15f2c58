"""Is the USB keypad still plugged in? (``[keypad] device``, docs/configuration.md)

The touchscreen never depends on the keypad: when it is unplugged the screen
keeps working by touch. :class:`KeypadPresence` only notices it, so that one
structured log line says when it went and one when it came back (the
touchscreen's UI clock calls :meth:`KeypadPresence.check` every few seconds;
a ``stat`` of a device node does not block). ``python -m deploy doctor``
reports a missing keypad too (``deploy/checks/hardware.py``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

log = logging.getLogger("kiosk.keypad")


class Change(StrEnum):
    MISSING = "missing"
    BACK = "back"


class KeypadPresence:
    """Watches one device path (e.g. ``/dev/input/by-id/usb-…-event-kbd``)."""

    def __init__(self, path: Path, exists: Callable[[Path], bool] = os.path.exists) -> None:
        self.path = path
        self._exists = exists
        self.present: bool | None = None  # not looked yet

    def check(self) -> Change | None:
        """Look once; log and return the change, if any (a keypad missing at
        start counts as gone)."""
        try:
            now = bool(self._exists(self.path))
        except OSError:  # e.g. a permission error on the folder: treat as gone
            now = False
        before, self.present = self.present, now
        if now and before is False:
            log.info("keypad back", extra={"event": "keypad.back", "device": str(self.path)})
            return Change.BACK
        if not now and before is not False:
            log.warning(
                "keypad missing: the touchscreen goes on by touch",
                extra={"event": "keypad.missing", "device": str(self.path)},
            )
            return Change.MISSING
        return None
