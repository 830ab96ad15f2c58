"""Tables of central ops: health history, alerts, staff accounts and sessions.

They live on :data:`central.db.engine.metadata`, so :class:`central.db.engine.Database`
creates them with the rest (this module is imported by ``central.db.engine``).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, String, Table, Text

from central.db.engine import BigId, Json, metadata

# Health history: raw samples for ``raw_days``, then one averaged sample per
# device and hour (``resolution = 3600``) for ``hourly_days``; older rows go.
health_samples = Table(
    "health_samples",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("device", String(64), nullable=False),
    Column("at", DateTime, nullable=False),
    Column("resolution", Integer, nullable=False),  # 0 = raw, 3600 = hourly mean
    Column("figures", Json, nullable=False),
    Index("ix_health_samples_device_at", "device", "at"),
    Index("ix_health_samples_resolution_at", "resolution", "at"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("device", String(64), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("detail", Text, nullable=False),
    Column("state", String(16), nullable=False),  # open | acknowledged | resolved
    Column("opened_at", DateTime, nullable=False),
    Column("acknowledged_by", String(64), nullable=True),
    Column("acknowledged_at", DateTime, nullable=True),
    Column("resolved_at", DateTime, nullable=True),
    Column("notified", Integer, nullable=False, default=0),
    Index("ix_alerts_state", "state"),
    Index("ix_alerts_device_rule", "device", "rule"),
)

staff_users = Table(
    "staff_users",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("password_hash", String(256), nullable=False),
    Column("totp_secret", String(64), nullable=False),
    Column("role", String(16), nullable=False),  # viewer | operator | admin
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", DateTime, nullable=True),
    Column("last_totp_step", BigInteger, nullable=False, default=0),
    Column("created_at", DateTime, nullable=False),
)

staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("username", String(64), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
)
