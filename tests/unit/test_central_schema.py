"""The migrations end at exactly :data:`central.db.tables.metadata`: this is
what fails when a column or index is added to the tables without a revision."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, MetaData, String

from central.db.engine import Database
from central.db.migrate import Status
from central.db.tables import metadata

pytestmark = pytest.mark.unit


def _drift(url: str, target: MetaData) -> list[object]:
    with Database(url, check_schema=False) as db, db.engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), target))


@pytest.fixture
def migrated_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'migrated.db'}"
    with Database(url, check_schema=False) as db:
        assert db.upgrade_schema().status is Status.EMPTY
        assert db.schema_state().status is Status.CURRENT
    return url


def test_migrations_end_at_the_tables_metadata(migrated_url: str) -> None:
    assert _drift(migrated_url, metadata) == []


def test_migrations_drift_is_found_for_a_column_without_revision(migrated_url: str) -> None:
    changed = MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["devices"].append_column(Column("nickname", String(64), nullable=True))
    drift = _drift(migrated_url, changed)
    assert [d[0] for d in drift if isinstance(d, tuple)] == ["add_column"]


def test_database_fresh_equals_migrated(tmp_path: Path) -> None:
    """A brand-new database made by create_all + stamp (what tests and first
    starts do) is at the newest revision and has the migrated schema."""
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    Database(url).close()
    with Database(url, check_schema=False) as db:
        assert db.schema_state().status is Status.CURRENT
    assert _drift(url, metadata) == []
