"""Alembic's environment for central: run on the connection that
:mod:`central.db.migrate` passes in ``config.attributes["connection"]``,
inside that connection's transaction (so a failed upgrade leaves nothing
half done on PostgreSQL and SQLite alike).

There is no ``alembic.ini``: use ``python -m central db ...``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from central.db.tables import metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("central's migrations run through `python -m central db upgrade`")
    # render_as_batch: SQLite cannot ALTER most things; batch mode copies the table.
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
