"""systemd notification (``sd_notify``) over the ``NOTIFY_SOCKET`` datagram socket.

With ``Type=notify`` systemd waits for ``READY=1``; with ``WatchdogSec=`` it
kills and restarts the service unless ``WATCHDOG=1`` arrives in time. The
daemon sends ``WATCHDOG=1`` only from its control loop, right after it has
read every relay level back and found it as expected, at half the interval
systemd asks for (``WATCHDOG_USEC``). Outside systemd (no ``NOTIFY_SOCKET``)
every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


class Notifier:
    """Sends ``KEY=value`` lines to systemd; owns its socket (``close()``)."""

    def __init__(self, address: str | None, watchdog_usec: int | None) -> None:
        self._address = address
        self._sock: socket.socket | None = None
        if address:
            if address.startswith("@"):  # abstract namespace
                self._address = "\0" + address[1:]
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.watchdog_interval = None if not watchdog_usec else watchdog_usec / 1e6 / 2
        self._last_feed: float | None = None

    @classmethod
    def from_env(cls) -> Notifier:
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        watchdog = (
            int(usec) if usec and usec.isdigit() and pid in (None, str(os.getpid())) else None
        )
        return cls(os.environ.get("NOTIFY_SOCKET") or None, watchdog)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, *lines: str) -> None:
        if self._sock is None or self._address is None:
            return
        try:
            self._sock.sendto("\n".join(lines).encode(), self._address)
        except OSError as exc:
            log.warning("sd_notify failed", extra={"error": str(exc)})

    def feed_if_due(self, now: float) -> bool:
        """Send ``WATCHDOG=1`` if half the watchdog interval has passed."""
        if self.watchdog_interval is None:
            return False
        if self._last_feed is not None and now - self._last_feed < self.watchdog_interval:
            return False
        self._last_feed = now
        self.notify("WATCHDOG=1")
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
