"""The reader layer: PC/SC through pyscard's ``smartcard.scard`` module.

:class:`Pcsc` owns one PC/SC context (re-established after pcscd restarts),
lists readers and opens :class:`CardSession` connections. A session is the
APDU transport: it handles ``61xx`` (GET RESPONSE) and ``6Cxx`` (resend with
the right Le), applies a per-APDU timeout, refuses forbidden commands
(:func:`cardreader.apdu.check_allowed`) and writes a trace at DEBUG level in
which the data of VERIFY is always masked.

Threads: a session with a timeout runs ``SCardTransmit`` on a worker thread
of its own and waits for it with a deadline; a card that never answers costs
a :class:`CardTimeoutError` and the session, never a hung caller. Nothing of
the caller's runs on that worker.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from smartcard import scard

from cardreader import apdu
from cardreader.errors import (
    CardBusyError,
    CardReaderError,
    CardRemovedError,
    CardTimeoutError,
    MalformedResponseError,
    NoCardError,
    NoReaderError,
    ServiceUnavailableError,
    TransportError,
)

log = logging.getLogger(__name__)
trace = logging.getLogger("cardreader.trace")

DEFAULT_APDU_TIMEOUT = 5.0
# pcsc-lite's client answers hresults as unsigned 32-bit values.
# SCARD_F_COMM_ERROR ("RPC transport error") is what a client sees when
# pcscd goes away under it.
_SERVICE_GONE = frozenset(
    {
        scard.SCARD_E_NO_SERVICE,
        scard.SCARD_E_SERVICE_STOPPED,
        scard.SCARD_E_INVALID_HANDLE,
        scard.SCARD_F_COMM_ERROR,
    }
)
_REMOVED = frozenset({scard.SCARD_W_REMOVED_CARD, scard.SCARD_W_RESET_CARD})
_NO_READER = frozenset(
    {
        scard.SCARD_E_NO_READERS_AVAILABLE,
        scard.SCARD_E_UNKNOWN_READER,
        scard.SCARD_E_READER_UNAVAILABLE,
    }
)
_MAX_CHAINED_RESPONSES = 64
_CONNECT_ATTEMPTS = 10
# SCardStatus state bit of pcsc-lite (not exported by pyscard).
_PCSCLITE_PRESENT = 0x0004


def pcsc_error(operation: str, hresult: int, reader: str = "") -> CardReaderError:
    """Map a PC/SC result code to our exception tree."""
    code = hresult & 0xFFFFFFFF
    if code in _SERVICE_GONE:
        return ServiceUnavailableError(scard.SCardGetErrorMessage(hresult))
    if code in _NO_READER:
        return NoReaderError(reader)
    if code == scard.SCARD_E_NO_SMARTCARD:
        return NoCardError(reader)
    if code in _REMOVED:
        return CardRemovedError(reader)
    if code == scard.SCARD_E_SHARING_VIOLATION:
        return CardBusyError(reader)
    return TransportError(operation, code, scard.SCardGetErrorMessage(hresult))


@dataclass(frozen=True)
class Response:
    """A card answer: data and status word (after 61xx / 6Cxx handling)."""

    data: bytes
    sw: int

    @property
    def ok(self) -> bool:
        return self.sw == apdu.SW_OK


RawTransmit = Callable[[bytes], bytes]
T = TypeVar("T")


class _Worker:
    """A thread that runs card I/O jobs so that callers can wait with a deadline."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], object] | None] = queue.SimpleQueue()
        self._answers: queue.SimpleQueue[tuple[object, BaseException | None]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def current(self) -> bool:
        return threading.get_ident() == self._thread.ident

    def put(self, job: Callable[[], object]) -> None:
        self._jobs.put(job)

    def get(self, timeout: float) -> tuple[object, BaseException | None]:
        """The next answer; ``queue.Empty`` after ``timeout`` seconds."""
        return self._answers.get(timeout=timeout)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                self._answers.put((job(), None))
            except BaseException as exc:  # handed to the waiting caller's thread
                self._answers.put((None, exc))

    def stop(self, wait: bool = True) -> None:
        self._jobs.put(None)
        if wait and not self.current:
            self._thread.join(1.0)


class WorkerPool:
    """One reusable worker; a worker stuck in a transmit is abandoned, not reused."""

    def __init__(
        self, name: str = "apdu-worker", on_abandon: Callable[[], None] | None = None
    ) -> None:
        self._name = name
        self._on_abandon = on_abandon
        self._worker: _Worker | None = None
        self._lock = threading.Lock()

    def get(self) -> _Worker:
        with self._lock:
            if self._worker is None:
                self._worker = _Worker(self._name)
            return self._worker

    def on_worker(self) -> bool:
        worker = self._worker
        return worker is not None and worker.current

    def discard(self, worker: _Worker) -> None:
        with self._lock:
            if self._worker is worker:
                self._worker = None
        worker.stop(wait=False)  # it ends once its transmit returns, if ever
        if self._on_abandon is not None:
            self._on_abandon()

    def close(self) -> None:
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()


class CardSession:
    """One connection to the card in one reader (the APDU transport).

    Use as a context manager. ``close()`` powers the card down by default
    (``SCARD_UNPOWER_CARD``), which also clears a verified PIN.

    Timeouts: ``transmit()`` from the caller's thread hands each APDU to a
    worker and waits with the deadline. :meth:`run` hands a whole flow of
    APDUs over at once (one thread hand-off instead of one per APDU) and
    still enforces the deadline of each APDU in it.
    """

    def __init__(
        self,
        reader: str,
        raw: RawTransmit,
        *,
        timeout: float | None = DEFAULT_APDU_TIMEOUT,
        on_close: Callable[[bool], None] | None = None,
        workers: WorkerPool | None = None,
    ) -> None:
        self.reader = reader
        self.timeout = timeout
        self.apdu_count = 0
        self.bytes_received = 0  # response data bytes (what a tap costs on the link)
        self._raw = raw
        self._on_close = on_close
        self._broken: CardReaderError | None = None
        self._own_workers = workers is None
        self._workers = workers or WorkerPool(f"apdu-{reader}")
        # (started, allowed seconds) of the APDU a flow in run() is waiting on.
        self._inflight: tuple[float, float] | None = None

    # -- transport -------------------------------------------------------

    def transmit(self, command: bytes, *, timeout: float | None = None) -> Response:
        """Send one command; follow ``61xx`` and ``6Cxx``; return data + SW."""
        apdu.check_allowed(command)
        data, sw = self._exchange(command, timeout)
        if sw >> 8 == 0x6C and not apdu.is_secret(command):
            # Never for VERIFY: resending it could consume a second PIN try.
            data, sw = self._exchange(apdu.with_le(command, sw & 0xFF), timeout)
        chunks = [data]
        for _ in range(_MAX_CHAINED_RESPONSES):
            if sw >> 8 != 0x61:
                break
            more, sw = self._exchange(apdu.get_response(sw & 0xFF), timeout)
            chunks.append(more)
        else:
            raise MalformedResponseError("endless 61xx chain of GET RESPONSE")
        return Response(b"".join(chunks), sw)

    def run(self, flow: Callable[[CardSession], T]) -> T:
        """Run ``flow(self)`` on the worker; each APDU in it keeps its deadline."""
        if self.timeout is None or self._workers.on_worker():
            return flow(self)
        self._check_usable()
        worker = self._workers.get()
        worker.put(lambda: flow(self))
        while True:
            inflight = self._inflight
            wait = self.timeout if inflight is None else inflight[0] + inflight[1] - _now()
            try:
                result, error = worker.get(timeout=max(wait, 0.0))
            except queue.Empty:
                current = self._inflight
                if current is not None and _now() >= current[0] + current[1]:
                    raise self._timed_out(worker, "APDU", current[1]) from None
                continue
            if error is not None:
                raise error
            return cast(T, result)

    def _check_usable(self) -> None:
        if self._broken is not None:
            raise self._broken

    def _exchange(self, command: bytes, timeout: float | None) -> tuple[bytes, int]:
        self._check_usable()
        wait = self.timeout if timeout is None else timeout
        started = _now()
        try:
            if wait is None:
                raw = self._raw(command)
            elif self._workers.on_worker():
                self._inflight = (started, wait)
                try:
                    raw = self._raw(command)
                finally:
                    self._inflight = None
            else:
                raw = self._with_deadline(command, wait)
        except CardReaderError as exc:
            trace.debug(
                "apdu failed",
                extra={"reader": self.reader, "c": apdu.trace_text(command), "error": str(exc)},
            )
            self._broken = self._broken or exc
            raise
        self.apdu_count += 1
        data, sw = apdu.split_response(raw)
        self.bytes_received += len(data)
        if trace.isEnabledFor(logging.DEBUG):
            trace.debug(
                "apdu",
                extra={
                    "reader": self.reader,
                    "c": apdu.trace_text(command),
                    "sw": f"{sw:04X}",
                    "r_len": len(data),
                    "ms": round((_now() - started) * 1000, 2),
                },
            )
        return data, sw

    def _with_deadline(self, command: bytes, wait: float) -> bytes:
        worker = self._workers.get()
        worker.put(lambda: self._raw(command))
        try:
            answer, error = worker.get(timeout=wait)
        except queue.Empty:
            raise self._timed_out(worker, apdu.command_name(command), wait) from None
        if error is not None:
            raise error
        return cast(bytes, answer)

    def _timed_out(self, worker: _Worker, what: str, wait: float) -> CardTimeoutError:
        # The worker is still stuck in SCardTransmit: it and the session are lost.
        self._workers.discard(worker)
        error = CardTimeoutError(what, wait)
        self._broken = error
        return error

    # -- lifecycle -------------------------------------------------------

    def close(self, *, unpower: bool = True) -> None:
        if self._own_workers:
            self._workers.close()
        stuck = isinstance(self._broken, CardTimeoutError)
        if self._broken is None:
            self._broken = CardRemovedError(self.reader)
        callback, self._on_close = self._on_close, None
        if callback is None:
            return
        if stuck:
            # A transmit still hangs and pcsc-lite would make the disconnect
            # wait for it: disconnect in the background instead.
            threading.Thread(target=callback, args=(unpower,), daemon=True).start()
        else:
            callback(unpower)

    def __enter__(self) -> CardSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _now() -> float:
    return time.perf_counter()


class Pcsc:
    """Owner of a PC/SC context: readers, connections, recovery after restarts."""

    def __init__(self, *, apdu_timeout: float | None = DEFAULT_APDU_TIMEOUT) -> None:
        self.apdu_timeout = apdu_timeout
        self._workers = WorkerPool(on_abandon=self._abandon_context)
        self._context: Any = None
        self._lock = threading.Lock()

    def _ctx(self) -> Any:
        with self._lock:
            if self._context is None:
                hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
                if hresult != scard.SCARD_S_SUCCESS:
                    raise pcsc_error("establish context", hresult)
                self._context = context
            return self._context

    def _drop_context(self) -> None:
        with self._lock:
            context, self._context = self._context, None
        if context is not None:
            scard.SCardReleaseContext(context)

    def _abandon_context(self) -> None:
        """After a timeout a transmit still holds the context's lock inside
        pcsc-lite: continue on a fresh context, release the old one later."""
        with self._lock:
            context, self._context = self._context, None
        if context is not None:
            threading.Thread(target=scard.SCardReleaseContext, args=(context,), daemon=True).start()

    def _call(self, operation: str, fn: Callable[[Any], tuple[Any, ...]], reader: str = "") -> Any:
        """Run ``fn(context)``; after a pcscd restart re-establish once and retry."""
        for attempt in (1, 2):
            result = fn(self._ctx())
            hresult = result[0]
            if hresult == scard.SCARD_S_SUCCESS:
                return result[1:] if len(result) > 2 else result[1]
            if hresult & 0xFFFFFFFF in _SERVICE_GONE:
                self._drop_context()
                if attempt == 1:
                    continue
            raise pcsc_error(operation, hresult, reader)
        raise AssertionError("unreachable")

    def readers(self) -> list[str]:
        """Names of the connected readers (empty list when there are none)."""
        try:
            names = self._call("list readers", lambda c: scard.SCardListReaders(c, []))
        except NoReaderError:
            return []
        return list(names)

    def find_reader(self, wanted: str = "") -> str:
        """The first reader whose name contains ``wanted`` (any reader if empty)."""
        for name in self.readers():
            if wanted in name:
                return name
        raise NoReaderError(wanted)

    def connect(self, reader: str, *, exclusive: bool = False) -> CardSession:
        """Connect to the card in ``reader``; exclusive for PIN work."""
        mode = scard.SCARD_SHARE_EXCLUSIVE if exclusive else scard.SCARD_SHARE_SHARED
        protocols = scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
        for attempt in range(_CONNECT_ATTEMPTS):
            try:
                hcard, protocol = self._call(
                    "connect", lambda c: scard.SCardConnect(c, reader, mode, protocols), reader
                )
                break
            except TransportError as exc:
                # Right after insertion pcscd may still be powering the card.
                if exc.code != scard.SCARD_W_UNPOWERED_CARD or attempt == _CONNECT_ATTEMPTS - 1:
                    raise
                time.sleep(0.1)

        def raw(command: bytes) -> bytes:
            hresult, response = scard.SCardTransmit(hcard, protocol, list(command))
            if hresult != scard.SCARD_S_SUCCESS:
                raise self._transmit_error(hcard, hresult, reader)
            if not response and self._vanished(reader):
                raise CardRemovedError(reader)
            return bytes(response)

        def on_close(unpower: bool) -> None:
            how = scard.SCARD_UNPOWER_CARD if unpower else scard.SCARD_LEAVE_CARD
            with contextlib.suppress(Exception):
                scard.SCardDisconnect(hcard, how)

        return CardSession(
            reader, raw, timeout=self.apdu_timeout, on_close=on_close, workers=self._workers
        )

    def _vanished(self, reader: str) -> bool:
        """After an empty answer: did the card leave? (vpcd and some USB readers
        answer nothing when the card goes mid-command; pcscd notices within
        its polling interval, so wait up to a second for the reader state.)"""
        context = self._ctx()
        hresult, states = scard.SCardGetStatusChange(
            context, 0, [(reader, scard.SCARD_STATE_UNAWARE)]
        )
        if hresult != scard.SCARD_S_SUCCESS:
            return True
        state = states[0][1] & ~scard.SCARD_STATE_CHANGED
        if not state & scard.SCARD_STATE_PRESENT:
            return True
        hresult, states = scard.SCardGetStatusChange(context, 1000, [(reader, state)])
        return hresult == scard.SCARD_S_SUCCESS and not states[0][1] & scard.SCARD_STATE_PRESENT

    @staticmethod
    def _transmit_error(hcard: Any, hresult: int, reader: str) -> CardReaderError:
        """vpcd and USB readers report a vanished card as a failed transmit."""
        if hresult & 0xFFFFFFFF == scard.SCARD_E_NOT_TRANSACTED:
            status = scard.SCardStatus(hcard)
            if status[0] != scard.SCARD_S_SUCCESS or not status[2] & _PCSCLITE_PRESENT:
                return CardRemovedError(reader)
        return pcsc_error("transmit", hresult, reader)

    def close(self) -> None:
        self._workers.close()
        self._drop_context()

    def __enter__(self) -> Pcsc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
