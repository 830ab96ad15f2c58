"""Watching readers for card insertion and removal.

:class:`CardWatcher` runs one thread of its own around
``SCardGetStatusChange`` and *hands* each :class:`CardEvent` to the caller:
into a :class:`queue.Queue` the caller reads, or through a hand-off function
such as ``loop.call_soon_threadsafe`` (see :meth:`CardWatcher.for_asyncio`).
No caller code runs on the watcher thread beyond that hand-off.

It survives what happens in the field: a reader unplugged and plugged back
(``reader_removed`` / ``reader_added``, with ``removed`` for a card that was
on it) and pcscd stopping or restarting (``service_lost``, then
``service_restored`` and fresh ``reader_added`` / ``inserted`` events).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from smartcard import scard

from cardreader.pcsc import _SERVICE_GONE

log = logging.getLogger(__name__)

EventKind = Literal[
    "inserted", "removed", "reader_added", "reader_removed", "service_lost", "service_restored"
]
PNP_READER = "\\\\?PnP?\\Notification"
_IGNORED = frozenset({scard.SCARD_E_TIMEOUT, scard.SCARD_E_CANCELLED})


@dataclass(frozen=True)
class CardEvent:
    kind: EventKind
    reader: str = ""
    atr: bytes = b""
    # time.monotonic() when the watcher saw it (for latency figures).
    at: float = field(default_factory=time.monotonic)


Deliver = Callable[[CardEvent], None]


class CardWatcher:
    """Delivers card and reader events from its own thread to the caller's side.

    ``deliver`` is a ``queue.Queue`` (bounded queues drop and count on
    overflow, with a warning) or a thread-safe hand-off function.
    """

    def __init__(
        self,
        deliver: queue.Queue[CardEvent] | Deliver,
        *,
        reader_filter: str = "",
        poll_seconds: float = 0.5,
        retry_seconds: float = 1.0,
        report_present: bool = True,
    ) -> None:
        self._deliver = deliver
        self.reader_filter = reader_filter
        self.poll_ms = int(poll_seconds * 1000)
        self.retry_seconds = retry_seconds
        self.report_present = report_present
        self.dropped = 0
        self._stop = threading.Event()
        self._context: Any = None
        self._context_lock = threading.Lock()
        self._states: dict[str, int] = {}
        self._service_up: bool | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def for_asyncio(
        cls, loop: asyncio.AbstractEventLoop, callback: Deliver, **kwargs: Any
    ) -> CardWatcher:
        """Events are run as ``callback(event)`` on ``loop``, never on our thread."""

        def hand_off(event: CardEvent) -> None:
            loop.call_soon_threadsafe(callback, event)

        return cls(hand_off, **kwargs)

    def start(self) -> CardWatcher:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="card-watcher", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        with self._context_lock:
            if self._context is not None:
                scard.SCardCancel(self._context)
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self._release()

    def __enter__(self) -> CardWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the watcher thread ----------------------------------------------

    def _emit(self, kind: EventKind, reader: str = "", atr: bytes = b"") -> None:
        event = CardEvent(kind, reader, atr)
        log.info("card event", extra={"event": kind, "reader": reader})
        if isinstance(self._deliver, queue.Queue):
            try:
                self._deliver.put_nowait(event)
            except queue.Full:
                self.dropped += 1
                log.warning("card event queue full, event dropped", extra={"event": kind})
        else:
            self._deliver(event)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._step():
                    self._stop.wait(self.retry_seconds)
            except Exception:
                # Never die: log, back off, start again from a fresh context.
                log.exception("card watcher error; restarting the watch")
                self._lost()
                self._stop.wait(self.retry_seconds)

    def _step(self) -> bool:
        """One round; False means 'wait before the next one'."""
        if self._context is None and not self._establish():
            return False
        hresult, names = scard.SCardListReaders(self._context, [])
        if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
            names = []
        elif hresult != scard.SCARD_S_SUCCESS:
            return self._failed("list readers", hresult)
        self._sync_readers([n for n in names if self.reader_filter in n])
        states = [(name, state) for name, state in self._states.items()]
        states.append((PNP_READER, len(names) << 16))
        hresult, new_states = scard.SCardGetStatusChange(self._context, self.poll_ms, states)
        if hresult in _IGNORED:
            return True
        if hresult != scard.SCARD_S_SUCCESS:
            return self._failed("wait for card events", hresult)
        for name, event_state, atr in new_states:
            if name in self._states:
                self._apply(name, event_state & ~scard.SCARD_STATE_CHANGED, bytes(atr))
        return True

    def _establish(self) -> bool:
        hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hresult != scard.SCARD_S_SUCCESS:
            self._lost()
            return False
        with self._context_lock:
            self._context = context
        if self._service_up is False:
            self._emit("service_restored")
        self._service_up = True
        return True

    def _failed(self, what: str, hresult: int) -> bool:
        if hresult & 0xFFFFFFFF in _SERVICE_GONE:
            self._lost()
        else:
            log.warning("card watcher: %s failed: %s", what, scard.SCardGetErrorMessage(hresult))
            self._release()
        return False

    def _lost(self) -> None:
        self._release()
        if self._service_up is not False:
            for name in list(self._states):
                self._drop_reader(name)
            self._emit("service_lost")
        self._service_up = False

    def _release(self) -> None:
        with self._context_lock:
            context, self._context = self._context, None
        if context is not None:
            scard.SCardReleaseContext(context)

    def _sync_readers(self, names: list[str]) -> None:
        for name in [n for n in self._states if n not in names]:
            self._drop_reader(name)
        for name in names:
            if name not in self._states:
                self._states[name] = scard.SCARD_STATE_UNAWARE
                self._emit("reader_added", name)

    def _drop_reader(self, name: str) -> None:
        if _usable(self._states.pop(name)):
            self._emit("removed", name)
        self._emit("reader_removed", name)

    def _apply(self, name: str, state: int, atr: bytes) -> None:
        before = self._states[name]
        self._states[name] = state
        was, now = _usable(before), _usable(state)
        first = before == scard.SCARD_STATE_UNAWARE
        if now and not was and (self.report_present or not first):
            self._emit("inserted", name, atr)
        elif was and not now:
            self._emit("removed", name)
        elif now and was and (state >> 16) != (before >> 16):
            # pcsc-lite counts card events in the high word: a swap between polls.
            self._emit("removed", name)
            self._emit("inserted", name, atr)


def _usable(state: int) -> bool:
    """A card is present and answering (a mute card is not reported)."""
    return bool(state & scard.SCARD_STATE_PRESENT) and not state & scard.SCARD_STATE_MUTE
