"""Door events to the outbox, on a thread of their own.

The control loop never waits on SQLite: a store locked by another process
(busy timeout) or a broken disk must not delay a relock. Events are queued
in order and appended by :class:`EventWriter`'s thread; if the store cannot
be opened or written, they stay queued (in order) and the writer retries,
logging each failure, while the doors keep working. ``status`` shows the
backlog and the last store error. A full disk is one of those failures: the
store refuses the append cleanly (:class:`~sync.errors.StoreFullError`), the
events stay queued and are written, in order and once each, when space is
back; events already appended from a batch are not appended again.

The writer also keeps the ``lockctl.running`` marker in the store's state
table: set when the daemon starts, cleared only by an orderly stop. Finding
it set at start means the previous run ended uncleanly (SIGKILL, crash,
power loss, watchdog); the ``lockctl.started`` event says so.
"""

from __future__ import annotations

import collections
import logging
import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sync.errors import StoreError, StoreFullError, SyncError
from sync.outbox import Outbox
from sync.store import DEFAULT_RESERVE_BYTES, Store, open_store

log = logging.getLogger(__name__)

RUNNING_KEY = "lockctl.running"
MAX_BACKLOG = 100_000
_Queued = tuple[str, dict[str, Any], datetime]


def _fixed(at: datetime) -> Callable[[], datetime]:
    return lambda: at


class EventWriter:
    """Appends events to the outbox in order; owns its store connection."""

    def __init__(
        self,
        store_path: Path,
        *,
        busy_timeout: float,
        timezone: str,
        started: dict[str, Any],
        retry_seconds: float = 1.0,
        reserve_bytes: int = DEFAULT_RESERVE_BYTES,
    ) -> None:
        self._path = store_path
        self._busy_timeout = busy_timeout
        self._reserve_bytes = reserve_bytes
        self._timezone = ZoneInfo(timezone)
        self._started = started
        self._retry = retry_seconds
        self._queue: collections.deque[_Queued] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._clean = False
        self._store: Store | None = None
        self._marked = False
        self._previous_running: str | None = None
        self._previous_read = False
        self.last_error: str | None = None
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="lockctl-events", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, type_: str, data: dict[str, Any]) -> None:
        """Queue one event (never blocks on the store)."""
        with self._cond:
            if len(self._queue) >= MAX_BACKLOG:
                dropped = self._queue.popleft()
                log.error("event backlog full; oldest event dropped", extra={"type": dropped[0]})
            self._queue.append((type_, data, datetime.now(self._timezone)))
            self._cond.notify()

    @property
    def backlog(self) -> int:
        with self._cond:
            return len(self._queue) + (0 if self._marked else 1)

    def stop(self, *, clean: bool, timeout: float = 5.0) -> bool:
        """Write what is queued (up to ``timeout``), then stop; True if all was written."""
        with self._cond:
            self._stopping = True
            self._clean = clean
            self._cond.notify()
        self._thread.join(timeout)
        done = not self._thread.is_alive()
        if not done:
            log.error("events not written before stop", extra={"backlog": self.backlog})
        return done

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping and self._marked:
                    self._cond.wait()
                batch = list(self._queue)
                stopping = self._stopping
            done, ok = self._write(batch)
            with self._cond:
                # Only what was written (or refused for good) leaves the
                # queue: a batch cut short by a full disk is not appended twice.
                for _ in range(done):
                    self._queue.popleft()
                if ok and stopping and not self._queue:
                    break
                if not ok:
                    self._cond.wait(self._retry)
        self._finish()

    def _write(self, batch: list[_Queued]) -> tuple[int, bool]:
        """Append ``batch`` in order: how many left the queue, and whether all did."""
        done = 0
        try:
            store = self._open()
            for type_, data, at in batch:
                # The event's time is when it happened, not when it was written.
                outbox = Outbox(store, timezone=self._timezone, now=_fixed(at))
                try:
                    outbox.append(type_, data)
                    self.written += 1
                except StoreError:
                    raise  # the store, not the event: keep it queued
                except (SyncError, ValueError) as exc:
                    # Cannot be stored as given: dropping is the only way on.
                    log.error("event refused", extra={"type": type_, "error": str(exc)})
                done += 1
        except (StoreError, sqlite3.Error, OSError) as exc:
            self._fail(exc)
            return done, False
        self.last_error = None
        return done, True

    def _open(self) -> Store:
        if self._store is None:
            self._store = open_store(
                self._path, busy_timeout=self._busy_timeout, reserve_bytes=self._reserve_bytes
            )
        if not self._marked:
            if not self._previous_read:
                # Read once: a retry after a failed start event must not take
                # our own marker for an unclean stop.
                self._previous_running = self._store.get_state(RUNNING_KEY)
                self._previous_read = True
            self._store.set_state(RUNNING_KEY, "1")
            data = {**self._started, "unclean_previous_stop": self._previous_running == "1"}
            Outbox(self._store, timezone=self._timezone).append("lockctl.started", data)
            self._marked = True
            self.written += 1
        return self._store

    def _fail(self, exc: Exception) -> None:
        message = f"{type(exc).__name__}: {exc}"
        if message != self.last_error:
            log.error(
                "events cannot be written; kept in memory, retrying",
                extra={"store": str(self._path), "error": message},
            )
        self.last_error = message
        if self._store is not None and not isinstance(exc, StoreFullError):
            # A full disk leaves the connection usable (rolled back); any
            # other failure gets a fresh connection at the next try.
            self._store.close()
            self._store = None

    def _finish(self) -> None:
        if self._store is None:
            return
        try:
            if self._clean:
                self._store.set_state(RUNNING_KEY, "0")
        except (StoreError, sqlite3.Error, OSError) as exc:
            log.error("could not record the orderly stop", extra={"error": str(exc)})
        finally:
            self._store.close()
            self._store = None
