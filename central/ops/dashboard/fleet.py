"""Read models for the dashboard and the ops API: the fleet table with
sorting and filters, one device, events. Plain queries, no HTML."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from central.db.engine import Database, aware
from central.db.tables import devices, events

SORT_KEYS = (
    "id",
    "facility",
    "status",
    "last_seen",
    "temperature",
    "backlog",
    "cache_age",
    "alerts",
)


@dataclass(frozen=True)
class FleetRow:
    id: str
    facility: str
    status: str
    last_seen: datetime | None
    versions: dict[str, str]
    temperature: float | None
    backlog: int | None
    backlog_age: float | None
    cache_age: float | None
    alerts: int

    def sort_key(self, key: str) -> Any:
        value = getattr(self, key)
        return (value is None, value if not isinstance(value, datetime) else value.timestamp())


def _number(health: dict[str, Any], key: str) -> Any:
    value = health.get(key)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def fleet(
    db: Database, alert_counts: dict[str, int], *, sort: str = "id", descending: bool = False,
    status: str = "", facility: str = "", query: str = "",
) -> list[FleetRow]:  # fmt: skip
    with db.read() as conn:
        rows = conn.execute(select(devices)).all()
    table = []
    for r in rows:
        health = dict(r.health or {})
        table.append(
            FleetRow(
                id=r.id, facility=r.facility or "", status=r.status,
                last_seen=aware(r.last_seen) if r.last_seen else None,
                versions=dict(r.versions or {}), temperature=_number(health, "cpu_temp_c"),
                backlog=_number(health, "outbox_depth"),
                backlog_age=_number(health, "outbox_oldest_age_s"),
                cache_age=_number(health, "reservation_age_s"), alerts=alert_counts.get(r.id, 0),
            )
        )  # fmt: skip
    if status:
        table = [row for row in table if row.status == status]
    if facility:
        table = [row for row in table if row.facility == facility]
    if query:
        table = [row for row in table if query.lower() in row.id.lower()]
    key = sort if sort in SORT_KEYS else "id"
    return sorted(table, key=lambda row: row.sort_key(key), reverse=descending)


def device(db: Database, device_id: str) -> dict[str, Any] | None:
    with db.read() as conn:
        row = conn.execute(select(devices).where(devices.c.id == device_id)).first()
    return None if row is None else dict(row._mapping)


def recent_events(
    db: Database, *, device: str = "", type_prefix: str = "", limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    query = select(events).order_by(events.c.at.desc()).limit(limit).offset(offset)
    if device:
        query = query.where(events.c.device == device)
    if type_prefix:
        query = query.where(events.c.type.startswith(type_prefix))
    with db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(query).all()]
