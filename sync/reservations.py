"""The device's reservation cache and the device side of reservation sync.

:class:`ReservationCache` owns the ``reservations`` and
``reservation_credentials`` tables: it applies a delta (one transaction, with
the facility version kept in ``sync_state``), a whole snapshot (atomically),
answers lookups by credential reference or code hash at a door and time, and
computes the *active hash* devices report for anti-entropy.

:class:`ReservationSync` is the protocol logic around it (no I/O of its own):
live deltas from the facility topic are applied when their ``prev_version``
is the local version; a gap starts a resync (the agent sends the request) and
live deltas are buffered (bounded) until the answer arrives; answers on the
device topic are deltas or snapshot chunks, assembled per ``snapshot_id``.
Rules and examples: ``docs/protocol.md``.

The hash devices report (``Health.reservation_hash``,
``ResyncRequest.active_hash``) is the active-window hash ``v1`` of
:mod:`contracts.reservations_hash` (``v1:<start>:<hours>:<sha256 hex>``, the
algorithm is documented there and in ``docs/protocol.md``): the same
function central uses, so a mismatch at equal versions really means
divergence. The window starts at the current hour and lasts
``DEFAULT_WINDOW_HOURS``.
"""

from __future__ import annotations

import ctypes
import logging
import random
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from typing import Literal

from contracts.mqtt import (
    Reservation,
    ReservationChange,
    ReservationDelta,
    ReservationSnapshotChunk,
    ResyncRequest,
)
from contracts.reservations_hash import DEFAULT_WINDOW_HOURS, window_hash
from sync.pacing import CAP_FACTOR, jittered
from sync.snapshot_rows import Row, SnapshotPart, reservation_row
from sync.store import Store

log = logging.getLogger(__name__)

VERSION_KEY = "reservations.version"
# When the cache was last confirmed current (read by kiosk.checkin.reservations).
SYNCED_AT_KEY = "reservations.synced_at"
MAX_SNAPSHOT_RESERVATIONS = 1_000_000
MAX_BUFFERED_DELTAS = 1000

Outcome = Literal["applied", "stale", "gap", "foreign"]


@dataclass(slots=True)
class _Hashed:
    """A cached reservation as :func:`active_hash` reads it."""

    id: str
    door: str
    starts_at: datetime
    ends_at: datetime
    credential_refs: list[str]
    code_hash: str | None
    status: str


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True, slots=True)
class CachedReservation:
    id: str
    door: str
    starts_at: int
    ends_at: int
    version: int


_INSERT = (
    "INSERT INTO reservations (id, facility, door, starts_at, ends_at, status, code_hash, version)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT = (
    _INSERT + " ON CONFLICT (id) DO UPDATE SET facility = excluded.facility,"
    " door = excluded.door, starts_at = excluded.starts_at, ends_at = excluded.ends_at,"
    " status = excluded.status, code_hash = excluded.code_hash, version = excluded.version"
)
_STAGE_RESERVATIONS = (
    "CREATE TEMP TABLE IF NOT EXISTS snapshot_reservations (id TEXT, facility TEXT, door TEXT,"
    " starts_at INTEGER, ends_at INTEGER, status TEXT, code_hash TEXT, version INTEGER)"
)
_STAGE_CREDENTIALS = (
    "CREATE TEMP TABLE IF NOT EXISTS snapshot_credentials"
    " (credential_ref TEXT, reservation_id TEXT)"
)
# Staged rows go in by statements of many rows each (800 parameters, within
# even an old SQLite's limit of 999): a third cheaper than one row per
# statement (``executemany``), whose per-row step dominates staging.
_STAGE_BATCH_PARAMS = 800
# The swap's page cache (KiB): the new tables and the sorts that build their
# keys and indexes stay in memory instead of spilling; given back after it.
_SWAP_CACHE_KIB = 65536
_SET_VERSION = (
    "INSERT INTO sync_state (key, value) VALUES (?, ?) ON CONFLICT (key)"
    " DO UPDATE SET value = excluded.value,"
    " updated = ((julianday('now') - 2440587.5) * 86400.0)"
)


class ReservationCache:
    """The reservation tables of one device store (one facility)."""

    def __init__(self, store: Store, facility: str) -> None:
        self.store = store
        self.facility = facility
        self._hash: tuple[tuple[int, int], str] | None = None

    def version(self) -> int:
        return int(self.store.get_state(VERSION_KEY, "0") or 0)

    def applied_at(self) -> float | None:
        """Unix time when the cache was last confirmed current (a delta or
        snapshot applied, or central said it is up to date)."""
        value = self.store.get_state(SYNCED_AT_KEY)
        try:
            return None if value is None else float(value)
        except ValueError:
            return None

    def mark_synced(self) -> None:
        self.store.set_state(SYNCED_AT_KEY, repr(time.time()))

    def apply_delta(self, delta: ReservationDelta) -> Outcome:
        """Apply one delta in one transaction with its version, if it follows ours."""
        if delta.facility != self.facility:
            return "foreign"
        with self.store.write() as conn:
            row = conn.execute("SELECT value FROM sync_state WHERE key = ?", (VERSION_KEY,))
            found = row.fetchone()
            local = int(found[0]) if found else 0
            if delta.version <= local:
                return "stale"
            if delta.prev_version != local:
                return "gap"
            self._hash = None
            _apply_changes(conn, delta.changes, delta.version)
            conn.execute(_SET_VERSION, (VERSION_KEY, str(delta.version)))
            conn.execute(_SET_VERSION, (SYNCED_AT_KEY, repr(time.time())))
        return "applied"

    def apply_snapshot(self, version: int, reservations: Sequence[Reservation]) -> int:
        """Replace the whole cache with ``reservations`` at ``version`` (all or nothing)."""
        self.discard_staged()
        self.stage(reservations, version)
        return self.apply_staged(version)

    def stage(self, reservations: Sequence[Reservation], version: int) -> None:
        """Put reservations of a snapshot aside until it is complete (see :meth:`stage_part`)."""
        self.stage_rows(
            [reservation_row(r, version) for r in reservations],
            [(ref, r.id) for r in reservations for ref in r.credential_refs],
        )

    def stage_part(self, part: SnapshotPart) -> None:
        self.stage_rows(part.rows, part.credentials)

    def stage_rows(self, rows: list[Row], credentials: list[tuple[str, str]]) -> None:
        """Put one snapshot chunk's rows aside until the snapshot is complete.

        The rows go to TEMP tables of this connection: staging takes no lock
        on the store, so other processes keep appending events meanwhile.
        """
        conn = self.store.conn
        conn.execute("BEGIN")
        try:
            conn.execute(_STAGE_RESERVATIONS)
            conn.execute(_STAGE_CREDENTIALS)
            _insert_many(conn, "INSERT INTO temp.snapshot_reservations VALUES ", 8, rows)
            _insert_many(conn, "INSERT INTO temp.snapshot_credentials VALUES ", 2, credentials)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def discard_staged(self) -> None:
        conn = self.store.conn
        conn.execute("DROP TABLE IF EXISTS temp.snapshot_reservations")
        conn.execute("DROP TABLE IF EXISTS temp.snapshot_credentials")

    def apply_staged(self, version: int) -> int:
        """Swap the staged snapshot in: one transaction, returns its size.

        A bulk load in SQL: secondary indexes are dropped and rebuilt inside
        the transaction (readers in other processes see the old cache until
        the commit), credentials go in in key order (reservations come in id
        order from central), the page cache is larger for the swap, and
        foreign-key checks are off for this transaction only (both tables are
        replaced together, so the references hold by construction).
        """
        conn = self.store.conn
        conn.execute(_STAGE_RESERVATIONS)
        conn.execute(_STAGE_CREDENTIALS)
        self._hash = None
        cache_size = int(conn.execute("PRAGMA cache_size").fetchone()[0])
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute(f"PRAGMA cache_size=-{_SWAP_CACHE_KIB}")
        try:
            with self.store.write() as tx:
                indexes = tx.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                    " AND tbl_name IN ('reservations', 'reservation_credentials')"
                ).fetchall()
                for name, _ in indexes:
                    tx.execute(f'DROP INDEX "{name}"')
                tx.execute("DELETE FROM reservation_credentials")
                tx.execute("DELETE FROM reservations")
                count = tx.execute(
                    "INSERT OR REPLACE INTO reservations (id, facility, door, starts_at, ends_at,"
                    " status, code_hash, version) SELECT * FROM temp.snapshot_reservations"
                ).rowcount
                tx.execute(
                    "INSERT OR IGNORE INTO reservation_credentials (credential_ref, reservation_id)"
                    " SELECT * FROM temp.snapshot_credentials ORDER BY 1, 2"
                )
                for _, sql in indexes:
                    tx.execute(sql)
                tx.execute(_SET_VERSION, (VERSION_KEY, str(version)))
                tx.execute(_SET_VERSION, (SYNCED_AT_KEY, repr(time.time())))
        finally:
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA cache_size={cache_size}")
            conn.execute("PRAGMA shrink_memory")
            _trim_heap()
            self.discard_staged()
        return int(count)

    def lookup(
        self, credential_ref: str, door: str, at: float, *, early_s: float = 0, late_s: float = 0
    ) -> list[CachedReservation]:
        """Active reservations of ``credential_ref`` at ``door`` covering ``at``.

        ``early_s``/``late_s`` widen the window (early entry, late exit).
        Uses the ``(credential_ref, reservation_id)`` primary key, then the
        reservation's primary key: well under a millisecond at 100,000 rows.
        """
        rows = self.store.query(
            "SELECT r.id, r.door, r.starts_at, r.ends_at, r.version"
            " FROM reservation_credentials c CROSS JOIN reservations r ON r.id = c.reservation_id"
            " WHERE c.credential_ref = ? AND r.door = ? AND r.status = 'active'"
            " AND r.starts_at <= ? AND r.ends_at > ? ORDER BY r.starts_at",
            (credential_ref, door, at + early_s, at - late_s),
        )
        return [CachedReservation(*tuple(r)) for r in rows]

    def lookup_code(
        self, code_hash: str, door: str, at: float, *, early_s: float = 0, late_s: float = 0
    ) -> list[CachedReservation]:
        """Like :meth:`lookup`, for a hashed reservation code."""
        rows = self.store.query(
            "SELECT id, door, starts_at, ends_at, version FROM reservations"
            " WHERE code_hash = ? AND door = ? AND status = 'active'"
            " AND starts_at <= ? AND ends_at > ? ORDER BY starts_at",
            (code_hash, door, at + early_s, at - late_s),
        )
        return [CachedReservation(*tuple(r)) for r in rows]

    def active_hash(self, now: float, hours: int = DEFAULT_WINDOW_HOURS) -> str:
        """The active-window hash at ``now`` (cached per content and window)."""
        start = int(now) // 3600 * 3600
        if self._hash is not None and self._hash[0] == (start, hours):
            return self._hash[1]
        rows = self.store.query(
            "SELECT r.id, r.door, r.starts_at, r.ends_at, r.code_hash, c.credential_ref"
            " FROM reservations r"
            " LEFT JOIN reservation_credentials c ON c.reservation_id = r.id"
            " WHERE r.status = 'active' AND r.starts_at < ? AND r.ends_at > ?",
            (start + hours * 3600, start),
        )
        found: dict[str, _Hashed] = {}
        for rid, door, starts, ends, code, ref in rows:
            entry = found.get(rid)
            if entry is None:
                entry = found[rid] = _Hashed(
                    rid, door, _utc(starts), _utc(ends), [], code, "active"
                )
            if ref is not None:
                entry.credential_refs.append(ref)
        digest = window_hash(found.values(), start, hours)
        self._hash = ((start, hours), digest)
        return digest

    def count(self) -> int:
        return int(self.store.query("SELECT count(*) FROM reservations")[0][0])


def _trim_heap() -> None:
    """Give the swap's page cache back to the system: glibc otherwise keeps
    its freed blocks in the process (about 30 MB more resident after a
    snapshot of 100,000 reservations)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the process's C library
    except (OSError, AttributeError):  # not glibc: nothing to trim this way
        return
    trim(0)


def _insert_many(
    conn: sqlite3.Connection, insert: str, width: int, rows: Sequence[tuple[object, ...]]
) -> None:
    """``insert`` (``INSERT INTO t VALUES ``) of ``rows``, many per statement."""
    per = _STAGE_BATCH_PARAMS // width
    one = "(" + ", ".join("?" * width) + ")"
    full = len(rows) - len(rows) % per
    if full:
        flat = list(chain.from_iterable(rows[:full]))
        step = per * width
        many = insert + ", ".join([one] * per)
        conn.executemany(many, [flat[i : i + step] for i in range(0, full * width, step)])
    conn.executemany(insert + one, rows[full:])


def _apply_changes(
    conn: sqlite3.Connection, changes: Iterable[ReservationChange], version: int
) -> None:
    for change in changes:
        res = change.reservation
        status = "cancelled" if change.op == "cancel" else res.status
        row = reservation_row(res, version)
        conn.execute(_UPSERT, (*row[:5], status, *row[6:]))
        conn.execute("DELETE FROM reservation_credentials WHERE reservation_id = ?", (res.id,))
        conn.executemany(
            "INSERT OR IGNORE INTO reservation_credentials (reservation_id, credential_ref)"
            " VALUES (?, ?)",
            [(res.id, ref) for ref in res.credential_refs],
        )


@dataclass
class _Assembly:
    snapshot_id: str
    version: int
    chunks: int
    parts: dict[int, tuple[Reservation, ...]] = field(default_factory=dict)
    total: int = 0


class SnapshotError(ValueError):
    """Chunks of one snapshot disagree or the snapshot is too large."""


class SnapshotAssembler:
    """Collects the chunks of one snapshot (the newest ``snapshot_id`` wins)."""

    def __init__(
        self,
        facility: str,
        max_reservations: int = MAX_SNAPSHOT_RESERVATIONS,
        *,
        stage: Callable[[SnapshotPart], None] | None = None,
        reset: Callable[[], None] | None = None,
    ) -> None:
        """With ``stage``, chunks are handed over as they come (and ``reset``
        called when a snapshot is abandoned) instead of being kept in memory."""
        self.facility = facility
        self.max_reservations = max_reservations
        self._stage = stage
        self._reset = reset or (lambda: None)
        self._current: _Assembly | None = None

    def _abandon(self) -> None:
        self._current = None
        self._reset()

    def add(
        self, message: ReservationSnapshotChunk | SnapshotPart
    ) -> tuple[int, list[Reservation]] | None:
        """Add a chunk; returns (version, all reservations) once complete
        (the list is empty when the chunks were staged)."""
        chunk = message if isinstance(message, SnapshotPart) else SnapshotPart.of(message)
        if chunk.facility != self.facility:
            raise SnapshotError(f"snapshot for facility {chunk.facility!r}, not ours")
        if chunk.chunk >= chunk.chunks:
            raise SnapshotError(f"chunk {chunk.chunk} of {chunk.chunks} is out of range")
        current = self._current
        if current is None or current.snapshot_id != chunk.snapshot_id:
            if current is not None:
                log.warning(
                    "snapshot abandoned for a newer one",
                    extra={"snapshot_id": current.snapshot_id, "got": len(current.parts)},
                )
                self._abandon()
            current = self._current = _Assembly(chunk.snapshot_id, chunk.version, chunk.chunks)
        elif (current.version, current.chunks) != (chunk.version, chunk.chunks):
            self._abandon()
            raise SnapshotError(f"chunks of snapshot {chunk.snapshot_id} disagree")
        if chunk.chunk not in current.parts:
            current.total += len(chunk.rows)
            if current.total > self.max_reservations:
                self._abandon()
                raise SnapshotError(f"snapshot exceeds {self.max_reservations} reservations")
            if self._stage is not None:
                self._stage(chunk)
                current.parts[chunk.chunk] = ()
            else:
                current.parts[chunk.chunk] = chunk.reservations
        if len(current.parts) < current.chunks:
            return None
        self._current = None
        return current.version, [r for i in range(current.chunks) for r in current.parts[i]]

    @property
    def in_progress(self) -> bool:
        return self._current is not None


class ReservationSync:
    """Device-side reservation sync decisions (the agent does the MQTT I/O)."""

    def __init__(
        self,
        cache: ReservationCache,
        *,
        resync_timeout: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.cache = cache
        self.resync_timeout = resync_timeout
        self._rng = rng or random.Random()
        # Requests in a row that central left unanswered: each doubles the wait
        # before the next (a slow central is not helped by being asked again).
        self._unanswered = 0
        self._clock = clock
        self._wall = wall
        self.assembler = SnapshotAssembler(
            cache.facility, stage=cache.stage_part, reset=cache.discard_staged
        )
        self._buffer: deque[ReservationDelta] = deque(maxlen=MAX_BUFFERED_DELTAS)
        self._needed = True
        self._outstanding_until: float | None = None
        self.snapshots_applied = 0
        self.deltas_applied = 0

    def on_connected(self) -> None:
        """After (re)connecting: ask central whether we missed changes."""
        self._needed = True
        self._outstanding_until = None

    def on_live_delta(self, delta: ReservationDelta) -> Outcome:
        """Apply a live delta that follows our version; buffer one after a gap."""
        outcome = self.cache.apply_delta(delta)
        self._count(outcome, delta)
        if outcome == "gap":
            self._buffer.append(delta)
            self._needed = True
        elif outcome == "applied" and self._buffer:
            self._drain_buffer()
        return outcome

    def on_answer(
        self, message: ReservationDelta | ReservationSnapshotChunk | SnapshotPart
    ) -> Outcome | None:
        """A message on the device topic (resync answer or forced snapshot).

        Returns the outcome of a delta or of a completed snapshot, None while
        a snapshot is incomplete. Raises :class:`SnapshotError` for bad chunks.
        """
        if isinstance(message, ReservationSnapshotChunk | SnapshotPart):
            if self._outstanding_until is not None:
                self._outstanding_until = self._clock() + self.resync_timeout
            done = self.assembler.add(message)
            if done is None:
                return None
            version = done[0]
            if version < self.cache.version():
                self.cache.discard_staged()
                outcome: Outcome = "stale"
            else:
                count = self.cache.apply_staged(version)
                self.snapshots_applied += 1
                log.info(
                    "reservation snapshot applied",
                    extra={"version": version, "reservations": count},
                )
                outcome = "applied"
        else:
            outcome = self.cache.apply_delta(message)
            self._count(outcome, message)
            if outcome == "stale" and message.version == self.cache.version():
                self.cache.mark_synced()  # central: "you are up to date"
            if outcome == "gap":
                self._needed = True
                self._outstanding_until = None
                self._unanswered = 0
                return outcome
        self._outstanding_until = None
        self._needed = False
        self._unanswered = 0
        self._drain_buffer()
        return outcome

    def _drain_buffer(self) -> None:
        pending = sorted(self._buffer, key=lambda d: d.version)
        self._buffer.clear()
        for delta in pending:
            outcome = self.cache.apply_delta(delta)
            self._count(outcome, delta)
            if outcome == "gap":
                self._buffer.append(delta)
                self._needed = True

    def _count(self, outcome: Outcome, delta: ReservationDelta) -> None:
        if outcome == "applied":
            self.deltas_applied += 1
        elif outcome == "gap":
            log.info(
                "reservation gap",
                extra={"local": self.cache.version(), "prev_version": delta.prev_version},
            )

    def request_due(self) -> ResyncRequest | None:
        """A resync request to send now, or None (one outstanding at a time)."""
        now = self._clock()
        if self._outstanding_until is not None and now < self._outstanding_until:
            return None
        if not self._needed and self._outstanding_until is None:
            return None
        if self._outstanding_until is not None:
            self._unanswered += 1
        self._outstanding_until = now + self._wait()
        self._needed = True
        return ResyncRequest(
            facility=self.cache.facility,
            from_version=self.cache.version(),
            active_hash=self.active_hash(),
        )

    def _wait(self) -> float:
        if not self._unanswered:
            return self.resync_timeout
        doubled = self.resync_timeout * 2 ** min(self._unanswered, 10)
        return jittered(min(doubled, self.resync_timeout * CAP_FACTOR), self._rng)

    def next_deadline(self) -> float | None:
        if self._outstanding_until is not None:
            return self._outstanding_until
        return self._clock() if self._needed else None

    def active_hash(self) -> str:
        return self.cache.active_hash(self._wall())
