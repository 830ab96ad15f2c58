"""Card events: insertion -> identification -> opaque reference.

The one place a tapped card becomes its credential reference, for check-in
(the door opens for the reference a reservation holds) and for card
enrolment (central links that same reference to a member), so the two can
never compute different references for one card. The one exception is a My
Number Card still enrolled under its legacy ``j1`` reference: check-in
matches it by ``j1``, and enrolment stores its current ``j2``
(:attr:`CardSeen.enrol_ref`; docs/cardreader.md, "Card references and
migration").

:class:`CardFeed` owns the card service and, unless told otherwise, its
watcher. Insertions arrive on the watcher's thread and are queued; the
feed's own thread identifies the card (2-3 APDUs for a member card, 3 for a
My Number Card: the head of its certificate; never a PIN, never the 12-digit
number) and hands a :class:`CardSeen` to ``sink``, which must only pass it
on to its owning loop (``PublicApp.post_seen``, ``DoorTerminal.post``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cardreader.errors import CardReaderError, CertificateError
from cardreader.identify import CardKind
from cardreader.service import CardService
from cardreader.watch import CardEvent, CardWatcher

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CardSeen:
    """A card on the reader: its opaque reference, or why there is none."""

    ref: str | None
    kind: str  # member | mynumber | unknown | unreadable
    readable: bool = True
    # A My Number Card that matched by its legacy j1 reference (``ref``): its
    # current j2 one. Check-in uses ``ref``; enrolment stores this, so that
    # re-enrolling the card ends its whole-certificate reads.
    current_ref: str | None = None

    @property
    def enrol_ref(self) -> str | None:
        """The reference an enrolment links to the member."""
        return self.current_ref if self.current_ref is not None else self.ref


Sink = Callable[[CardSeen], None]


class CardFeed:
    def __init__(self, service: CardService, sink: Sink) -> None:
        self.service = service
        self.sink = sink
        self._events: queue.Queue[CardEvent | None] = queue.Queue(maxsize=64)
        self._watcher: CardWatcher | None = None
        self._thread = threading.Thread(target=self._run, name="card-feed", daemon=True)
        # Insertion seen by the watcher -> reference handed on (seconds), last card.
        self.last_latency: float | None = None

    def start(self, watch: bool = True) -> CardFeed:
        """Start identifying; with ``watch=False`` the owner watches the
        reader itself and passes the insertions it wants read to :meth:`offer`
        (the counter kiosk, whose issuance flow reads the card its own way)."""
        self._thread.start()
        if watch:
            self._watcher = self.service.watch(self.offer)
        return self

    def offer(self, event: CardEvent) -> None:
        """Any thread: queue the event and return (nothing else runs here)."""
        try:
            self._events.put_nowait(event)
        except queue.Full:
            log.warning("card event dropped: identification is behind", extra={"kind": event.kind})

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
        self._events.put(None)
        self._thread.join(5)
        self.service.close()

    def _run(self) -> None:
        while True:
            event = self._events.get()
            if event is None:
                return
            if event.kind != "inserted":
                continue
            seen = self.identify(event.reader)
            self.last_latency = time.monotonic() - event.at
            self.sink(seen)

    def identify(self, reader: str) -> CardSeen:
        """The card in ``reader`` as its opaque reference and kind."""
        try:
            info = self.service.tap(reader)
        except CertificateError as exc:
            # An expired My Number certificate still identifies nobody here.
            log.info("card certificate not usable", extra={"reader": reader, "error": str(exc)})
            return CardSeen(None, "unknown")
        except CardReaderError as exc:
            log.warning("card not readable", extra={"reader": reader, "error": type(exc).__name__})
            return CardSeen(None, "unreadable", readable=False)
        if info.kind is CardKind.UNKNOWN or info.reference is None:
            return CardSeen(None, "unknown")
        kind = "mynumber" if info.kind is CardKind.MYNUMBER else "member"
        return CardSeen(info.reference, kind, current_ref=info.alternate)
