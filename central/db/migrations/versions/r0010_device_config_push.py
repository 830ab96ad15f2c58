"""Pushed device configuration: desired versions and per-device push state.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

Two new tables; nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "device_config_versions",
        sa.Column("version", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("note", sa.String(length=200), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_index("ix_device_config_versions_target", "device_config_versions",
                    ["scope", "target", "version"])  # fmt: skip
    op.create_table(
        "device_config_state",
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("pushed_version", sa.BigInteger(), nullable=False),
        sa.Column("command_id", sa.String(length=36), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=48), server_default="", nullable=False),
        sa.Column("message", sa.String(length=500), server_default="", nullable=False),
        sa.Column("pushed_by", sa.String(length=80), nullable=False),
        sa.Column("pushed_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("device"),
    )


def downgrade() -> None:
    op.drop_table("device_config_state")
    op.drop_index("ix_device_config_versions_target", table_name="device_config_versions")
    op.drop_table("device_config_versions")
