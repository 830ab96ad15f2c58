"""The headless door terminal: a reader, a buzzer and an LED, no screen.

Card events arrive on the card reader's thread and are put on a queue; the
terminal's own loop takes them one at a time, runs the same
:class:`~kiosk.checkin.service.CheckinService` as the touchscreen, and answers with
a beep/LED pattern through the lock controller (the only owner of GPIO).
A failure while serving one person is logged and the loop goes on to the
next: nothing here may stop the terminal.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading

from kiosk.cards import CardSeen
from kiosk.checkin.ports import SignalPort
from kiosk.checkin.service import CheckinResult, CheckinService, Outcome
from kiosk.errors import KioskError

log = logging.getLogger(__name__)


PATTERNS = {
    Outcome.GRANTED: "granted",
    Outcome.DENIED: "denied",
    Outcome.UNKNOWN_CARD: "denied",
    Outcome.UNREADABLE_CARD: "error",
    Outcome.LOCK_UNAVAILABLE: "error",
    Outcome.LOCKDOWN: "denied",
}


class DoorTerminal:
    """Serves one door; :meth:`post` is safe from any thread."""

    def __init__(self, service: CheckinService, signals: SignalPort, backlog: int = 16) -> None:
        self.service = service
        self.signals = signals
        self._events: queue.Queue[CardSeen | None] = queue.Queue(maxsize=backlog)
        self._stopped = threading.Event()
        self.served = 0

    def post(self, card: CardSeen) -> None:
        """Hand a card event to the terminal's loop (called on the reader's thread)."""
        try:
            self._events.put_nowait(card)
        except queue.Full:
            # People tap again; a burst beyond the backlog is a faulty reader.
            log.warning("card event dropped: terminal busy", extra={"kind": card.kind})

    def stop(self) -> None:
        self._stopped.set()
        with contextlib.suppress(queue.Full):  # the loop sees _stopped anyway
            self._events.put_nowait(None)

    def run(self) -> None:
        """Serve card events until :meth:`stop`."""
        while not self._stopped.is_set():
            card = self._events.get()
            if card is None:
                continue
            self.serve(card)

    def serve(self, card: CardSeen) -> CheckinResult | None:
        try:
            if card.ref is None:
                result = self.service.card_not_usable(card.readable)
            else:
                result = self.service.present_credential(card.ref)
        except Exception:
            log.exception("check-in failed", extra={"door": self.service.door})
            self._signal("error")
            return None
        self.served += 1
        self._signal(PATTERNS[result.outcome])
        log.info(
            "check-in",
            extra={"door": result.door, "outcome": result.outcome.value, "reason": result.reason},
        )
        return result

    def _signal(self, pattern: str) -> None:
        try:
            self.signals.signal(self.service.door, pattern)
        except (KioskError, OSError) as exc:
            log.warning("signal not played", extra={"pattern": pattern, "error": str(exc)})
