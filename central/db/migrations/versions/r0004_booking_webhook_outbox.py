"""The outbox of messages to the city's existing booking system (check-ins
and no-shows of imported bookings).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

Only a new table: existing rows are untouched.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "booking_webhook_outbox",
        sa.Column("pk", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.String(length=64), nullable=False),
        sa.Column("booking_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("body", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("delivery_id"),
    )
    op.create_index(
        "ix_booking_webhook_outbox_due",
        "booking_webhook_outbox",
        ["delivered_at", "next_attempt_at"],
    )
    op.create_index("ix_booking_webhook_outbox_booking", "booking_webhook_outbox", ["booking_id"])


def downgrade() -> None:
    op.drop_index("ix_booking_webhook_outbox_booking", table_name="booking_webhook_outbox")
    op.drop_index("ix_booking_webhook_outbox_due", table_name="booking_webhook_outbox")
    op.drop_table("booking_webhook_outbox")
