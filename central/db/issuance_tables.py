"""Tables of the issuance service, on :data:`central.db.engine.metadata` (created
with the rest by :class:`central.db.engine.Database`; imported by ``central.db.engine``).

No table holds a name, address, birth date or My Number: residents appear
only by the registry's opaque reference. Certificate PDFs are kept only
while an order is ``confirmed`` (so a retried confirm gets the same
documents) and dropped when its outcome is recorded.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
)

from central.db.engine import BigId, Json, metadata

issuance_challenges = Table(
    "issuance_challenges",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("device", String(64), nullable=False),
    Column("challenge", String(64), nullable=False),  # hex
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("used_at", DateTime, nullable=True),
    Index("ix_issuance_challenges_expires_at", "expires_at"),
)

issuance_sessions = Table(
    "issuance_sessions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("device", String(64), nullable=False),
    Column("resident_ref", String(64), nullable=False),
    Column("cert_fingerprint", String(64), nullable=False),
    Column("kinds", Json, nullable=False),  # kind ids offered at opening
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("closed_at", DateTime, nullable=True),
)

issuance_orders = Table(
    "issuance_orders",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("device", String(64), nullable=False),
    Column("session_id", String(32), nullable=False),
    Column("idempotency_key", String(32), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("resident_ref", String(64), nullable=False),
    Column("items", Json, nullable=False),  # [{kind, copies, fee_yen, options}]
    Column("total_fee_yen", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("payment_ref", String(64), nullable=True),
    Column("outcome_reason", String(64), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("issued_at", DateTime, nullable=True),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("device", "idempotency_key", name="uq_issuance_orders_device_key"),
    Index("ix_issuance_orders_issued_at", "issued_at"),
)

issuance_documents = Table(
    "issuance_documents",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("order_id", String(32), nullable=False, index=True),
    Column("item_index", Integer, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("copy_index", Integer, nullable=False),
    Column("issue_number", String(32), nullable=False, unique=True),
    Column("sha256", String(64), nullable=False),
    Column("pdf", LargeBinary, nullable=True),  # dropped once the outcome is known
)

# The last issue number handed out per (local) year.
issuance_counters = Table(
    "issuance_counters",
    metadata,
    Column("year", Integer, primary_key=True, autoincrement=False),
    Column("last", BigInteger, nullable=False),
)

# Who (device, opaque resident ref), when, what kind, copies, fee, outcome.
issuance_audit = Table(
    "issuance_audit",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("device", String(64), nullable=False),
    Column("resident_ref", String(64), nullable=True),
    Column("action", String(32), nullable=False),  # session_opened, session_refused, issued, ...
    Column("order_id", String(32), nullable=True),
    Column("kind", String(32), nullable=True),
    Column("copies", Integer, nullable=False, default=0),
    Column("fee_yen", Integer, nullable=False, default=0),
    Column("outcome", String(32), nullable=True),  # refusal code or order status
    Index("ix_issuance_audit_at", "at"),
)
