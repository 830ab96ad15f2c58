"""Staff passkeys (WebAuthn), pending sign-in steps, disabled staff accounts.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

Two new tables and one column with a default (``staff_users.disabled``,
false for every existing account): nothing existing changes meaning.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column(
        "staff_users",
        sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "staff_passkeys",
        sa.Column("credential_id", sa.String(length=512), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("transports", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("disabled_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("credential_id"),
    )
    op.create_index("ix_staff_passkeys_username", "staff_passkeys", ["username"])
    op.create_table(
        "staff_challenges",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("challenge", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_staff_challenges_expires", "staff_challenges", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_staff_challenges_expires", table_name="staff_challenges")
    op.drop_table("staff_challenges")
    op.drop_index("ix_staff_passkeys_username", table_name="staff_passkeys")
    op.drop_table("staff_passkeys")
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_column("disabled")
