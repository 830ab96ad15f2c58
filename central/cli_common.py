"""What the command modules of ``python -m central`` share (:mod:`central.cli`
and :mod:`central.issuance.cli`): the exit codes and opening the database."""

from __future__ import annotations

from pathlib import Path

from central.config import CentralConfig
from central.db.engine import Database

EXIT_FAILED, EXIT_USAGE, EXIT_CONFIG, EXIT_DATABASE = 1, 2, 3, 5


def open_db(config: CentralConfig, *, check_schema: bool = True) -> Database:
    """The configured database (its SQLite folder made first); see
    :class:`Database` for ``check_schema``."""
    if config.database.url.startswith("sqlite:///"):
        Path(config.database.url.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    return Database(config.database.url, pool_size=config.database.pool_size,
                    busy_timeout=config.database.busy_timeout_seconds,
                    check_schema=check_schema)  # fmt: skip
