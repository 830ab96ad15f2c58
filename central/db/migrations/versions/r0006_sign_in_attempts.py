"""Sign-in attempts per client address, shared by all API workers.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

A new table (the dashboard's and the booking site's per-address limit lived
in each process's memory before): nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_attempts",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "address", "window_start"),
    )
    op.create_index("ix_sign_in_attempts_window", "sign_in_attempts", ["window_start"])


def downgrade() -> None:
    op.drop_index("ix_sign_in_attempts_window", table_name="sign_in_attempts")
    op.drop_table("sign_in_attempts")
