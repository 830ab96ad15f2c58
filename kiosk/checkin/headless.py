"""``python -m kiosk --headless``: the door terminal for doors without a screen."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from kiosk.cards import CardFeed
from kiosk.checkin.terminal import DoorTerminal
from kiosk.checkin.wiring import LockctlPort, build_checkin_service
from kiosk.reader import card_service_for
from sync.config import DeviceConfig

log = logging.getLogger(__name__)


def run_headless(config: DeviceConfig, door: str | None = None) -> int:
    """Serve card taps for one door until SIGTERM/SIGINT."""
    lock = LockctlPort(config.lock.socket)
    service, close_store = build_checkin_service(config, lock, door)
    terminal = DoorTerminal(service, lock)
    feed = CardFeed(card_service_for(config), terminal.post).start()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        terminal.stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    log.info("door terminal ready", extra={"door": service.door})
    try:
        loop = threading.Thread(target=terminal.run, name="door-terminal")
        loop.start()
        while loop.is_alive():
            loop.join(0.5)  # the main thread stays free for signal handlers
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        feed.close()
        lock.close()
        close_store()
    return 0
