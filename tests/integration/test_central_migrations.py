"""Upgrading central's database with ``python -m central db upgrade``, and
central refusing to start on a database at another revision than its own.

The previous release's database is made from the frozen DDL in
``central_legacy/`` (its ``metadata.create_all``, no revision), not from
revision 0001: that DDL is the record of what databases in the field hold,
and upgrading it with no drift is what holds revision 0001 to it (the drift
test only holds the newest revision to ``tables.py``)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError

from central.api.tokens import TokenStore
from central.audit import record_now
from central.cli_common import EXIT_DATABASE
from central.db.engine import Database
from central.db.migrate import FIRST_REVISION, Status, head
from central.db.tables import audit_log, devices, events, metadata, reservations, staff_users
from central.errors import SchemaVersionError
from tests.harness.central import ROOT

pytestmark = pytest.mark.integration

LEGACY = Path(__file__).with_name("central_legacy")
ROWS = {"devices": 2, "events": 3, "facilities": 1, "reservations": 1, "reservation_changes": 1,
        "api_tokens": 1, "staff_users": 1, "alerts": 1, "issuance_counters": 1}  # fmt: skip
AT = datetime(2026, 4, 1, 9, 30)


def _legacy_database(url: str) -> None:
    """The previous release's schema, with data in several tables."""
    dialect = "postgresql" if url.startswith("postgresql") else "sqlite"
    ddl = (LEGACY / f"{dialect}.sql").read_text()
    statements = [s.strip() for s in ddl.split(";\n") if s.strip().removeprefix("--").strip()]
    with Database(url, check_schema=False) as db, db.engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql("\n".join(line for line in statement.splitlines()
                                           if not line.startswith("--")))  # fmt: skip
        for n in (1, 2):
            conn.execute(text(
                "INSERT INTO devices (id, facility, status, session, versions)"
                " VALUES (:id, 'fac-1', 'online', 7, :versions)"), {"id": f"door-{n}",
                "versions": '{"kiosk": "0.1.0"}'})  # fmt: skip
        for seq in (1, 2, 3):
            conn.execute(text(
                "INSERT INTO events (event_id, device, seq, type, at, clock_trusted, data,"
                " received_at, worker) VALUES (:eid, 'door-1', :seq, 'door.opened', :at, true,"
                " :data, :at, 'w1')"), {"eid": f"00000000-0000-4000-8000-00000000000{seq}",
                "seq": seq, "at": AT, "data": '{"door": "main"}'})  # fmt: skip
        conn.execute(text("INSERT INTO facilities VALUES ('fac-1', 1, :at)"), {"at": AT})
        conn.execute(text(
            "INSERT INTO reservations VALUES ('r-1', 'fac-1', 'main', :at, :at, :refs, NULL,"
            " 'active', 1, :at, :at)"), {"at": AT, "refs": '["ref-1"]'})  # fmt: skip
        conn.execute(text("INSERT INTO reservation_changes VALUES ('fac-1', 1, :c, :at, NULL)"),
                     {"c": '[{"id": "r-1"}]', "at": AT})  # fmt: skip
        conn.execute(text("INSERT INTO api_tokens VALUES ('tok1', 'ops', 'reader', :h, :at, NULL)"),
                     {"h": "a" * 64, "at": AT})  # fmt: skip
        conn.execute(text("INSERT INTO staff_users VALUES ('sato', 'x', 'S', 'viewer', 0, NULL,"
                          " 0, :at)"), {"at": AT})  # fmt: skip
        conn.execute(text("INSERT INTO alerts (device, rule, detail, state, opened_at, notified)"
                          " VALUES ('door-1', 'offline', 'gone', 'open', :at, 0)"),
                     {"at": AT})  # fmt: skip
        conn.execute(text("INSERT INTO issuance_counters VALUES (2026, 41)"))


@pytest.fixture(params=["sqlite", "postgresql"])
def legacy_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'central.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    _legacy_database(url)
    yield url


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "central.toml"
    path.write_text(f'[database]\nurl = "{url}"\n')
    return path


def _central(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "central", *args, "--config", str(config)],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
    )  # fmt: skip


def test_db_upgrade_keeps_every_row_of_the_previous_release(
    legacy_url: str, tmp_path: Path
) -> None:
    config = _config(tmp_path, legacy_url)
    done = _central(config, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert f"recognised as revision {FIRST_REVISION}" in done.stdout
    with Database(legacy_url) as db:
        assert db.schema_state().status is Status.CURRENT
        assert [t["id"] for t in TokenStore(db).list_tokens()] == ["tok1"]
        with db.read() as conn:
            counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in ROWS}
            versions = conn.execute(
                select(devices.c.versions).where(devices.c.id == "door-2")
            ).scalar_one()
            max_seq = conn.execute(select(func.max(events.c.seq))).scalar_one()
            refs = conn.execute(select(reservations.c.credential_refs)).scalar_one()
            role = conn.execute(select(staff_users.c.role)).scalar_one()
    assert counts == ROWS
    with Database(legacy_url) as db:  # revision 0007 made the audit log append-only
        record_now(db, "cli", "test.kept", "x")
        with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.execute(update(audit_log).values(actor="someone else"))
    with Database(legacy_url, check_schema=False) as db, db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    assert (versions, max_seq, refs, role) == ({"kiosk": "0.1.0"}, 3, ["ref-1"], "viewer")
    again = _central(config, "db", "upgrade")
    assert again.returncode == 0
    assert f"already at revision {head()}" in again.stdout


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["ingest"]])
def test_central_start_refuses_a_database_behind(tmp_path: Path, command: list[str]) -> None:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    _legacy_database(url)
    done = _central(_config(tmp_path, url), *command)
    assert done.returncode == EXIT_DATABASE
    message = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert message == [
        "error: central database was made by a release before schema migrations (it has no "
        f"revision), this version needs {head()}: run `python -m central db upgrade` "
        "(back the database up first)"
    ]
    with Database(url, check_schema=False) as db:
        assert db.schema_state().status is Status.LEGACY  # refused, not stamped


def _stamp_newer(url: str) -> None:
    with Database(url) as db, db.write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))


def test_database_at_unknown_newer_revision_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    _stamp_newer(url)
    with pytest.raises(SchemaVersionError) as refused:
        Database(url)
    assert refused.value.revision == "9999"
    config = _config(tmp_path, url)
    for command in (["db", "upgrade"], ["token", "list"]):
        done = _central(config, *command)
        assert done.returncode == EXIT_DATABASE
        assert (f"error: central database is at revision 9999, made by a newer version of "
                f"central (this one knows up to {head()}): upgrade the software"
                ) in done.stderr.splitlines()  # fmt: skip


def test_db_current_and_history_print_the_revisions(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    config = _config(tmp_path, url)
    empty = _central(config, "db", "current")
    assert empty.returncode == 0
    assert empty.stdout.startswith("none: empty database")
    assert _central(config, "db", "upgrade").returncode == 0
    current = _central(config, "db", "current")
    assert current.stdout.strip() == f"{head()} (head: what this version needs)"
    history = _central(config, "db", "history").stdout.splitlines()
    assert history[0].startswith(f"{FIRST_REVISION} ")
    assert history[-1].startswith(f"{head()} (current, head)  ")
    _stamp_newer(url)
    ahead = _central(config, "db", "current")
    assert ahead.returncode == 0
    assert ahead.stdout.startswith("9999 (ahead): central database is at revision 9999")


def test_database_refuses_a_previous_release_database_in_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    _legacy_database(url)
    with pytest.raises(SchemaVersionError) as refused:
        Database(url)
    assert refused.value.revision is None
    assert refused.value.head == head()
    with Database(url, check_schema=False) as db, db.write() as conn:
        conn.execute(update(devices).values(status="offline"))  # still usable by `db` commands
