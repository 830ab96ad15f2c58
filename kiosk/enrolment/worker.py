"""Runs card enrolment's requests to central and the outbox off the UI loop.

:class:`EnrolmentWorker` takes one request at a time on its thread (the
flow's :class:`~kiosk.enrolment.flow.Redeem`, :class:`~kiosk.enrolment.flow.Enrol`,
:class:`~kiosk.enrolment.flow.CancelTicket`, :class:`~kiosk.enrolment.flow.Record`)
and hands each answer to the session through ``post``, which must run it on
the UI loop (``Clock.schedule_once`` in the app, a direct call in tests).
``handle`` does the same work in the caller's thread, for tests and tools.

Nothing here logs the code, the ticket or the card's reference.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Protocol

from contracts.enrolment import CardIn
from foundation.errors import ProductError
from kiosk.enrolment.flow import (
    CancelTicket,
    Enrol,
    Record,
    Redeem,
    Redeemed,
    Request,
    Sent,
)
from kiosk.enrolment.ports import EnrolmentCentral, EventSink
from kiosk.enrolment.texts import CENTRAL_UNREACHABLE
from kiosk.errors import CentralError, CentralUnreachable, EnrolmentRefused

log = logging.getLogger(__name__)
Post = Callable[[Callable[[], None]], None]
# At exit, how long a request in flight may take to finish (central's timeout).
CLOSE_WAIT_SECONDS = 15.0


class Results(Protocol):
    """The session's result methods (run on the UI loop through ``post``)."""

    def redeemed(self, generation: int, result: Redeemed, now: float) -> None: ...

    def sent(self, generation: int, result: Sent, now: float) -> None: ...


class EnrolmentWorker:
    def __init__(
        self,
        central: EnrolmentCentral,
        events: EventSink,
        post: Post,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.central = central
        self.clock = clock
        self.events = events
        self.post = post
        self.results: Results | None = None  # the session, once the app has built it
        self._queue: queue.Queue[Request | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="enrolment", daemon=True)

    def start(self) -> EnrolmentWorker:
        self._thread.start()
        return self

    def submit(self, request: Request) -> None:
        """Any thread: queue a request and return."""
        self._queue.put(request)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(CLOSE_WAIT_SECONDS)
        self.central.close()

    def _run(self) -> None:
        while (request := self._queue.get()) is not None:
            try:
                self.handle(request)
            except Exception:  # one person's failure must not stop the kiosk
                log.exception("enrolment request failed", extra={"request": type(request).__name__})

    def handle(self, request: Request) -> None:
        match request:
            case Redeem(generation, code):
                redeemed = self._redeem(code)
                self._answer(lambda r: r.redeemed(generation, redeemed, self.clock()))
            case Enrol(generation, card):
                sent = self._enrol(card)
                self._answer(lambda r: r.sent(generation, sent, self.clock()))
            case CancelTicket(ticket):
                try:
                    self.central.cancel(ticket)
                except CentralError as exc:  # it expires by itself at central
                    log.info("enrolment ticket not cancelled", extra={"error": type(exc).__name__})
            case Record(type_, data):
                try:
                    self.events.append(type_, data)
                except ProductError as exc:  # the store is down: the screen goes on
                    log.error(
                        "enrolment event not recorded", extra={"type": type_, "error": str(exc)}
                    )

    def _redeem(self, code: str) -> Redeemed:
        try:
            return Redeemed(ticket=self.central.redeem(code))
        except EnrolmentRefused as exc:
            return Redeemed(refusal=exc.code, retry_after_seconds=exc.retry_after_seconds)
        except CentralUnreachable:
            return Redeemed(refusal=CENTRAL_UNREACHABLE)

    def _enrol(self, card: CardIn) -> Sent:
        try:
            return Sent(card=self.central.enrol(card))
        except EnrolmentRefused as exc:
            return Sent(refusal=exc.code)
        except CentralUnreachable:
            return Sent(refusal=CENTRAL_UNREACHABLE)

    def _answer(self, call: Callable[[Results], None]) -> None:
        results = self.results
        if results is not None:
            self.post(lambda: call(results))
