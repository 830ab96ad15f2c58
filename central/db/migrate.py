"""Which schema revision a central database is at, and bringing it to this
version's (Alembic, configured here: no ``alembic.ini``).

- A brand-new database (none of central's tables) is created from
  :data:`central.db.tables.metadata` and stamped with the newest revision, in
  one transaction. That equals running every migration (the drift test
  ``tests/unit/test_central_schema.py`` holds them to it) and costs a fraction
  of it, which the many tests that make a fresh database rely on.
- Any other database must be at the newest revision; :func:`prepare` raises
  :class:`SchemaVersionError` otherwise, with what to run.
- :func:`upgrade` (``python -m central db upgrade``) runs the migrations. A
  database of a release before migrations (central's tables, no revision)
  is recognised as revision :data:`FIRST_REVISION` and stamped first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Engine, MetaData, String, Table, inspect, select
from sqlalchemy.engine import Connection

from central.db.tables import metadata
from central.errors import SchemaVersionError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
UPGRADE_COMMAND = "python -m central db upgrade"
SCHEMA_LOCK = 0x6B696F736B  # PostgreSQL advisory lock while creating or migrating
FIRST_REVISION = "0001"
# The tables every release before migrations created at start (revision 0001).
FIRST_REVISION_TABLES = frozenset({
    "events", "event_quarantine", "devices", "device_seq", "reservations", "facilities",
    "reservation_changes", "api_tokens", "issuance_challenges", "issuance_sessions",
    "issuance_orders", "issuance_documents", "issuance_counters", "issuance_audit",
    "health_samples", "alerts", "staff_users", "staff_sessions",
})  # fmt: skip
# Alembic's own bookkeeping table, read here without a migration context (which
# would log two lines on every start).
_version = Table("alembic_version", MetaData(), Column("version_num", String(32)))


class Status(Enum):
    CURRENT = "current"  # at this version's head
    EMPTY = "empty"  # none of central's tables
    LEGACY = "legacy"  # central's tables without a revision: a release before migrations
    BEHIND = "behind"  # an older revision this version knows
    AHEAD = "ahead"  # a revision this version does not know: newer software made it


@dataclass(frozen=True)
class SchemaState:
    status: Status
    revision: str | None  # as stored; None without one
    head: str  # what this version of central needs

    def problem(self) -> str | None:
        """The one message for an operator when central cannot start on it."""
        if self.status is Status.BEHIND:
            return (
                f"central database is at revision {self.revision}, this version needs "
                f"{self.head}: run `{UPGRADE_COMMAND}` (back the database up first)"
            )
        if self.status is Status.LEGACY:
            return (
                "central database was made by a release before schema migrations (it has "
                f"no revision), this version needs {self.head}: run `{UPGRADE_COMMAND}` "
                "(back the database up first)"
            )
        if self.status is Status.AHEAD:
            return (
                f"central database is at revision {self.revision}, made by a newer version "
                f"of central (this one knows up to {self.head}): upgrade the software"
            )
        return None


@cache
def scripts() -> ScriptDirectory:
    """The migration scripts shipped in this package (read once per process)."""
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    revision = scripts().get_current_head()
    if revision is None:
        raise RuntimeError(f"no migration scripts in {MIGRATIONS}")
    return revision


def state(conn: Connection) -> SchemaState:
    newest = head()
    tables = set(inspect(conn).get_table_names())
    revision = None
    if _version.name in tables:
        revision = conn.execute(select(_version.c.version_num)).scalar_one_or_none()
    if revision is None:
        ours = tables & set(metadata.tables)
        return SchemaState(Status.LEGACY if ours else Status.EMPTY, None, newest)
    if revision == newest:
        return SchemaState(Status.CURRENT, revision, newest)
    known = {script.revision for script in scripts().walk_revisions()}
    return SchemaState(Status.BEHIND if revision in known else Status.AHEAD, revision, newest)


def prepare(conn: Connection) -> None:
    """At the start of every command but ``db ...``: create a brand-new database
    at the newest revision, accept one at it, refuse any other."""
    lock(conn)
    found = state(conn)
    if found.status is Status.EMPTY:
        metadata.create_all(conn)
        MigrationContext.configure(conn).stamp(scripts(), found.head)
        log.info("central database created", extra={"revision": found.head})
        return
    problem = found.problem()
    if problem is not None:
        raise SchemaVersionError(problem, found.revision, found.head)


def upgrade(engine: Engine) -> SchemaState:
    """Bring the database to the newest revision in one transaction; returns
    its state before. A database of a release before migrations is stamped as
    :data:`FIRST_REVISION` first."""
    with engine.begin() as conn:
        lock(conn)
        found = state(conn)
        if found.status is Status.AHEAD:
            raise SchemaVersionError(str(found.problem()), found.revision, found.head)
        if found.status is Status.LEGACY:
            _stamp_legacy(conn)
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    log.info("central database upgraded", extra={"from": found.revision, "to": found.head})
    return found


def history() -> list[tuple[str, str]]:
    """(revision, first line of its description), oldest first."""
    revisions = list(scripts().walk_revisions())
    return [(r.revision, (r.doc or "").strip().splitlines()[0]) for r in reversed(revisions)]


def lock(conn: Connection) -> None:
    """Serialise schema work: several PostgreSQL workers may start at once
    (SQLite's BEGIN IMMEDIATE already serialises)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})")


def _stamp_legacy(conn: Connection) -> None:
    missing = FIRST_REVISION_TABLES - set(inspect(conn).get_table_names())
    if missing:
        raise SchemaVersionError(
            "central database has some of central's tables but no revision, and lacks "
            f"{', '.join(sorted(missing))}: it is not a database of an earlier release; "
            "restore it from a backup",
            None,
            head(),
        )
    MigrationContext.configure(conn).stamp(scripts(), FIRST_REVISION)
    log.warning("central database of a release before migrations stamped",
                extra={"revision": FIRST_REVISION})  # fmt: skip


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config
