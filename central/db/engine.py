"""Central's database through SQLAlchemy Core 2.x: SQLite by default (one
embedded file, WAL), PostgreSQL (psycopg 3) for scale -- the same code.

All times are stored as naive UTC (``timestamp without time zone`` on
PostgreSQL); :func:`utc` converts on the way in and :func:`aware` on the way
out. :class:`Database` owns the engine; the stores in :mod:`central.ingest.store`,
:mod:`central.reservations.store` and :mod:`central.api.tokens` take it. The
tables are in :mod:`central.db.tables`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from central.db import migrate
from central.errors import DatabaseError

log = logging.getLogger(__name__)


def utc(moment: datetime) -> datetime:
    """An aware datetime as naive UTC for storage."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: give an offset")
    return moment.astimezone(UTC).replace(tzinfo=None)


def aware(stored: datetime) -> datetime:
    """A stored naive-UTC datetime as an aware one."""
    return stored.replace(tzinfo=UTC)


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Database:
    """Owns the engine; ``close()`` disposes of it."""

    def __init__(
        self, url: str, *, pool_size: int = 5, busy_timeout: float = 30.0, check_schema: bool = True
    ) -> None:
        """``check_schema``: create a brand-new database at the newest revision,
        refuse one at another revision (:class:`~central.errors.SchemaVersionError`,
        see :mod:`central.db.migrate`); False only for the ``db`` commands."""
        self.url = url
        self.engine = _make_engine(url, pool_size, busy_timeout)
        try:
            if check_schema:
                with self._errors(), self.engine.begin() as conn:
                    migrate.prepare(conn)
        except BaseException:
            self.engine.dispose()
            raise

    def schema_state(self) -> migrate.SchemaState:
        """The database's revision against this version's (``db current``)."""
        with self._errors(), self.engine.connect() as conn:
            return migrate.state(conn)

    def upgrade_schema(self) -> migrate.SchemaState:
        """Run the migrations (``db upgrade``); returns the state before."""
        with self._errors():
            return migrate.upgrade(self.engine)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """A driver error as the one :class:`DatabaseError` the CLI reports."""
        try:
            yield
        except SQLAlchemyError as exc:
            raise DatabaseError(
                f"database {_safe(self.url)} unusable: {exc.__class__.__name__}: {_first_line(exc)}"
            ) from None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def insert(self, table: Table) -> Any:
        """A dialect insert with ``on_conflict_do_nothing``/``do_update`` support."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[Connection]:
        """One write transaction (SQLite: BEGIN IMMEDIATE), committed on exit.

        ``durable=False`` commits without waiting for the disk: visible to
        every connection at once, as any commit, but a power loss may roll it
        back until the next durable commit of any connection flushes it too
        (SQLite: the one WAL file is synced whole; PostgreSQL: the WAL up to
        that commit). Only for a state whose loss refuses rather than
        admits, and only when a durable commit follows before an answer
        depends on it, or when what was done on its answer is undone when
        it is refused (a pending order: the kiosk voids the charge of a
        refused confirmation), or for telemetry the device sends again
        anyway (health reports); every other write is durable
        (``synchronous=FULL``).
        """
        if durable:
            with self.engine.begin() as conn:
                yield conn
            return
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                with _sqlite_not_synced(conn), conn.begin():
                    yield conn
            else:
                with conn.begin():
                    conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                    yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def lock_clause(self) -> bool:
        """Whether SELECT ... FOR UPDATE means something (PostgreSQL)."""
        return self.dialect == "postgresql"

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_retryable(exc: BaseException) -> bool:
    """Deadlock, serialisation failure or a busy SQLite: try the transaction again."""
    if not isinstance(exc, OperationalError):
        return False
    text = str(exc.orig).lower()
    return any(s in text for s in ("deadlock", "serializ", "database is locked", "could not"))


def _make_engine(url: str, pool_size: int, busy_timeout: float) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": busy_timeout})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # Small insertmanyvalues pages repeat the same SQL text, which psycopg caches.
    return create_engine(
        url, pool_size=pool_size, pool_pre_ping=True, insertmanyvalues_page_size=100
    )


@contextmanager
def _sqlite_not_synced(conn: Connection) -> Iterator[None]:
    """``synchronous=NORMAL`` on this connection for one transaction (SQLite
    refuses the change inside one), then FULL again; a connection that cannot
    be set back is discarded, never returned to the pool undurable."""
    driver = conn.connection.driver_connection
    assert driver is not None  # a checked-out connection
    driver.execute("PRAGMA synchronous=NORMAL")
    try:
        yield
    finally:
        try:
            driver.execute("PRAGMA synchronous=FULL")
        except Exception:
            conn.invalidate()
            raise


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url


def _first_line(exc: BaseException) -> str:
    return str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else ""
