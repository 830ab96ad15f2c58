"""Staff calls from the touchscreens are alerts too: the call they answer and
who finished them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

Two nullable columns on ``alerts``: existing rows are untouched (the rules'
alerts have no call and resolve themselves).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("ref", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("resolved_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("resolved_by")
        batch.drop_column("ref")
