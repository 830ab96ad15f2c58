"""The device store: one SQLite file shared by every device process.

WAL journal, ``synchronous=FULL`` (a commit survives power loss), a busy
timeout so several processes can write, and a schema built by sqlite-utils
``Migrations``. Opening is safe from several processes at once: migrations
run inside one ``BEGIN IMMEDIATE`` transaction, so exactly one process
applies them and the others see the result.

A file created by a newer version of the software (a migration this version
does not know) is refused rather than written to.

Every failed write is rolled back and raised as the package's typed error
(:mod:`sync.errors`; a full disk is :class:`StoreFullError`), so a
long-running writer's connection is usable again at its next write. Opening
writes nothing when the schema is current, so a full disk does not stop a
process from starting; ``read_only=True`` opens without migrating or
writing at all (the shell's read-only tools). Headroom for draining on a full
disk: :mod:`sync.headroom`.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlite_utils import Database, Migrations

from sync.errors import (
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreTooNewError,
    StoreUnavailableError,
)
from sync.headroom import DISK_ACTION, Reserve

log = logging.getLogger(__name__)

MIGRATION_SET = "city-kiosk.device"
DEFAULT_RESERVE_BYTES = 8 * 1024 * 1024
# SQLite primary result codes (the low byte of ``sqlite_errorcode``).
SQLITE_BUSY, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_NOTADB = 5, 11, 13, 26
migrations = Migrations(MIGRATION_SET)


@migrations()
def m001_initial(db: Database) -> None:
    # AUTOINCREMENT: seq never goes back, even after acknowledged rows are
    # deleted, so central can rely on it per device.
    db.execute(
        """
        CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            at TEXT NOT NULL,
            clock_trusted INTEGER NOT NULL CHECK (clock_trusted IN (0, 1)),
            data TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent')),
            attempts INTEGER NOT NULL DEFAULT 0,
            created REAL NOT NULL DEFAULT (((julianday('now') - 2440587.5) * 86400.0))
        ) STRICT
        """
    )
    db.execute(
        """
        CREATE TABLE reservations (
            id TEXT PRIMARY KEY,
            facility TEXT NOT NULL,
            door TEXT NOT NULL,
            starts_at INTEGER NOT NULL,
            ends_at INTEGER NOT NULL,
            status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'cancelled')),
            code_hash TEXT,
            version INTEGER NOT NULL,
            data TEXT NOT NULL DEFAULT '{}'
        ) STRICT
        """
    )
    db.execute("CREATE INDEX reservations_door_time ON reservations (door, ends_at, starts_at)")
    db.execute(
        "CREATE INDEX reservations_code ON reservations (code_hash) WHERE code_hash IS NOT NULL"
    )
    db.execute(
        """
        CREATE TABLE reservation_credentials (
            reservation_id TEXT NOT NULL REFERENCES reservations (id) ON DELETE CASCADE,
            credential_ref TEXT NOT NULL,
            PRIMARY KEY (credential_ref, reservation_id)
        ) STRICT, WITHOUT ROWID
        """
    )
    db.execute(
        """
        CREATE TABLE sync_state (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated REAL NOT NULL DEFAULT (((julianday('now') - 2440587.5) * 86400.0))
        ) STRICT
        """
    )


@migrations()
def m002_reservation_credentials_by_reservation(db: Database) -> None:
    # Deltas replace a reservation's credentials (DELETE ... WHERE
    # reservation_id = ?), and deleting a reservation cascades to them: both
    # need this index, or each is a scan of every credential.
    db.execute(
        "CREATE INDEX reservation_credentials_reservation"
        " ON reservation_credentials (reservation_id)"
    )


@migrations()
def m003_command_ledger(db: Database) -> None:
    # The remote commands this device took (sync.ledger): the id is the
    # primary key, so a command runs at most once however often it arrives.
    db.execute(
        """
        CREATE TABLE commands (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            target TEXT NOT NULL CHECK (target IN ('agent', 'lockctl', 'kiosk')),
            body BLOB NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'running', 'done', 'failed', 'refused', 'expired')),
            code TEXT NOT NULL DEFAULT '',
            message TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT '{}',
            attachment BLOB,
            expires REAL NOT NULL,
            received REAL NOT NULL,
            finished REAL,
            reported INTEGER NOT NULL DEFAULT 0 CHECK (reported IN (0, 1))
        ) STRICT
        """
    )
    db.execute("CREATE INDEX commands_waiting ON commands (target, state)")
    db.execute("CREATE INDEX commands_unreported ON commands (reported) WHERE reported = 0")


SCHEMA_VERSION = len(migrations._migrations)


class Store:
    """An open device store. Use as a context manager or call :meth:`close`.

    The connection may be used from several threads; writes are serialised
    by a lock and by SQLite's own locking across processes.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout: float = 10.0,
        reserve_bytes: int = DEFAULT_RESERVE_BYTES,
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.reserve = Reserve(self.path, 0 if read_only else reserve_bytes)
        self._lock = threading.RLock()
        if read_only:
            self.conn = _connect_read_only(self.path, busy_timeout)
            self.db = Database(self.conn, execute_plugins=False)
            try:
                _refuse_too_new(self.db, self.path)
            except BaseException:
                self.conn.close()
                raise
            return
        try:
            self.conn, self.db = _open(self.path, busy_timeout)
        except StoreUnavailableError:
            # Opening may need a few bytes (the -shm index, a migration): on a
            # full disk (not for a permission problem), give the reserve back
            # once and try again.
            if not self.reserve.before_draining_write("the store could not be opened"):
                raise
            self.conn, self.db = _open(self.path, busy_timeout)
        if not self.reserve.held():
            self.reserve.ready_for_ordinary_write()

    @contextmanager
    def write(self, *, use_reserve: bool = False) -> Iterator[sqlite3.Connection]:
        """A write transaction taken with ``BEGIN IMMEDIATE``.

        Taking the write lock up front means a busy store waits (busy
        timeout) instead of failing half-way through a read-then-write.
        Returns only after the commit is durable. Any failure rolls back and
        SQLite's errors become :class:`~sync.errors.StoreError`.

        ``use_reserve``: a write that drains (deletes confirmed events) or
        keeps the agent running (its small state rows); it may use the
        disk's reserve. Other writes are refused with
        :class:`~sync.errors.StoreFullError` while the reserve is released.
        """
        with self._lock:
            self._check_room(use_reserve)
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                yield self.conn
                self.conn.execute("COMMIT")
            except BaseException as exc:
                self._abort(exc)
                raise

    def insert(self, sql: str, params: tuple[Any, ...]) -> int:
        """One ordinary ``INSERT`` in a write transaction of its own, with
        everything :meth:`write` does (headroom, ``BEGIN IMMEDIATE``, durable
        ``COMMIT``, rollback and typed errors); the new row's ``rowid``.

        Without the generator and ``with`` of :meth:`write`: a single append
        is the hot path, and its whole budget is a few tens of microseconds.
        """
        with self._lock:
            self._check_room(use_reserve=False)
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                rowid = self.conn.execute(sql, params).lastrowid
                self.conn.execute("COMMIT")
            except BaseException as exc:
                self._abort(exc)
                raise
        return int(rowid or 0)

    def _check_room(self, use_reserve: bool) -> None:
        if use_reserve:
            self.reserve.before_draining_write()
        elif not self.reserve.ready_for_ordinary_write():
            raise _full(self.path, "the disk is full (the reserve for draining is in use)")

    def _abort(self, exc: BaseException) -> None:
        """Roll back a failed write; raise SQLite's failures as the store's
        typed error. Anything else is the caller's to re-raise as it is."""
        self._rollback()
        if isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError):
            return  # a bug or bad data, not the store: the caller's to see
        if isinstance(exc, sqlite3.Error):
            raise self._write_failed(exc) from exc

    def _rollback(self) -> None:
        # After SQLITE_FULL, SQLite may already have rolled back by itself;
        # a failing ROLLBACK must not hide the error that caused it.
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error as exc:
                log.error("store rollback failed", extra={"error": str(exc)})

    def _write_failed(self, exc: sqlite3.Error) -> StoreError:
        error = _classify(self.path, exc)
        if isinstance(error, StoreFullError):
            self.reserve.release("a write met a full disk")
        log.error(
            "store write failed; rolled back",
            extra={"store": str(self.path), "error": str(exc), "error_type": type(error).__name__},
        )
        return error

    def space_low(self) -> bool:
        """True while ordinary writes (appends) are refused for lack of disk space."""
        return self.reserve.space_low()

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self.conn.execute(sql, params))

    def get_state(self, key: str, default: str | None = None) -> str | None:
        rows = self.query("SELECT value FROM sync_state WHERE key = ?", (key,))
        return str(rows[0]["value"]) if rows else default

    def set_state(self, key: str, value: str) -> None:
        # Small rows the agent needs to keep running (session, link): they may
        # use the reserve, so a full disk never stops it from draining.
        with self.write(use_reserve=True) as conn:
            conn.execute(
                "INSERT INTO sync_state (key, value) VALUES (?, ?) ON CONFLICT (key)"
                " DO UPDATE SET value = excluded.value,"
                " updated = ((julianday('now') - 2440587.5) * 86400.0)",
                (key, value),
            )

    def integrity_problems(self) -> list[str]:
        """``PRAGMA integrity_check`` findings; empty when the file is sound.

        Not ``quick_check``: SQLite 3.40's quick_check wrongly reports NULLs
        in the second primary-key column of a WITHOUT ROWID table
        (``reservation_credentials``); the full check does not.
        """
        rows = self.query("PRAGMA integrity_check")
        found = [str(r[0]) for r in rows]
        return [] if found == ["ok"] else found

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(
    path: str | Path,
    *,
    busy_timeout: float = 10.0,
    reserve_bytes: int = DEFAULT_RESERVE_BYTES,
    read_only: bool = False,
) -> Store:
    """Open (creating and migrating if needed) the device store at ``path``.

    ``read_only``: open an existing store without creating, migrating or
    writing anything (works on a full or read-only disk).
    """
    return Store(path, busy_timeout=busy_timeout, reserve_bytes=reserve_bytes, read_only=read_only)


def _open(path: Path, busy_timeout: float) -> tuple[sqlite3.Connection, Database]:
    conn = _connect(path, busy_timeout)
    try:
        db = Database(conn, execute_plugins=False)
        _prepare(db, path, busy_timeout)
    except BaseException:
        conn.close()
        raise
    return conn, db


def _connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailableError(
            str(path),
            f"its folder cannot be created ({exc.strerror})",
            "Check store.path in the device configuration and the folder's permissions.",
        ) from None
    try:
        conn = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise StoreUnavailableError(
            str(path),
            f"cannot be opened ({exc})",
            "Check store.path and that the service user may write the file and its folder.",
        ) from None
    conn.row_factory = sqlite3.Row
    return conn


def _connect_read_only(path: Path, busy_timeout: float) -> sqlite3.Connection:
    """``mode=ro``; when even that needs bytes the disk lacks (a new ``-shm``
    index) and no ``-wal`` holds uncheckpointed commits, ``immutable=1``."""
    if not path.is_file():
        raise StoreUnavailableError(
            str(path), "does not exist", "Check store.path in the device configuration."
        )
    wal = path.with_name(path.name + "-wal")
    try:
        return _connect_uri(path, "mode=ro", busy_timeout)
    except sqlite3.Error as exc:
        if wal.exists() and wal.stat().st_size > 0:
            raise _classify(path, exc) from None
    try:
        return _connect_uri(path, "immutable=1", busy_timeout)
    except sqlite3.Error as exc:
        raise _classify(path, exc) from None


def _connect_uri(path: Path, mode: str, busy_timeout: float) -> sqlite3.Connection:
    uri = f"file:{quote(str(path.resolve()))}?{mode}"
    conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout, check_same_thread=False)
    conn.isolation_level = None
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens it for real
    except BaseException:
        conn.close()
        raise
    return conn


def _journal_mode_wal(db: Database, busy_timeout: float) -> str:
    # Switching a new file to WAL takes an exclusive lock, and SQLite answers
    # "database is locked" at once (no busy handler) when another process is
    # switching or creating it at the same moment: the device's processes
    # starting together on a fresh store. Retried within the busy timeout.
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            return str(db.execute("PRAGMA journal_mode=WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def _prepare(db: Database, path: Path, busy_timeout: float = 10.0) -> None:
    try:
        mode = _journal_mode_wal(db, busy_timeout)
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        _migrate(db, path)
    except sqlite3.DatabaseError as exc:
        raise _classify(path, exc) from None
    if mode != "wal":
        raise StoreUnavailableError(
            str(path),
            f"cannot use write-ahead logging (journal mode stays {mode!r})",
            "Put the store on a local file system (not a network share or tmpfs without locks).",
        )


def _migrate(db: Database, path: Path) -> None:
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        _refuse_too_new(db, path)
        pending = [m.name for m in migrations.pending(db)]
        # Nothing written when the schema is current: opening must work on a
        # full disk (a process restarting, a tool looking at the store).
        if pending:
            migrations.apply(db)
        if db.conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            db.conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except BaseException:
        db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")
    if pending:
        log.info("store migrated", extra={"store": str(path), "applied": pending})


def _refuse_too_new(db: Database, path: Path) -> None:
    known = {m.name for m in migrations._migrations}
    try:
        unknown = [m.name for m in migrations.applied(db) if m.name not in known]
    except sqlite3.DatabaseError as exc:
        raise _classify(path, exc) from None
    if unknown:
        raise StoreTooNewError(
            str(path),
            f"it was created by a newer version of this software (migration {unknown[-1]})",
            "Install that version or newer, or move the file aside to start a new store"
            " (unsent events stay in the old file).",
        )


def _full(path: Path, problem: str) -> StoreFullError:
    return StoreFullError(str(path), problem, f"New events are refused. {DISK_ACTION}.")


def _classify(path: Path, exc: sqlite3.Error) -> StoreError:
    text = str(exc)
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code == SQLITE_FULL or "disk is full" in text:
        return _full(path, f"the disk is full ({text})")
    if code in (SQLITE_CORRUPT, SQLITE_NOTADB) or "not a database" in text or "malformed" in text:
        return StoreCorruptError(
            str(path),
            f"the file is damaged or not a SQLite database ({text})",
            "Stop the device services, move the file aside for analysis (it may hold unsent"
            " events) and start them again to create a new store.",
        )
    if code == SQLITE_BUSY:
        return StoreUnavailableError(
            str(path),
            f"is locked by another process past the busy timeout ({text})",
            "Check for a stuck device process; raise store.busy_timeout_seconds if the device"
            " is slow.",
        )
    return StoreUnavailableError(
        str(path),
        f"cannot be written ({text})",
        "Check the free space, the file's owner and permissions, and that the disk is not"
        " read-only.",
    )
