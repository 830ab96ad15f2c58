"""Ops JSON API (bearer tokens, in the OpenAPI document): a device's health
history, alerts with filters and paging, and acknowledging an alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Path, Query
from pydantic import BaseModel

from central.audit import Outcome, record_now
from central.db.engine import Database, aware
from central.ops.service import AlertStore, HealthHistory

MAX_ID = 2**63 - 1  # database integer range


class HealthPoint(BaseModel):
    at: datetime
    figures: dict[str, float]


class AlertOut(BaseModel):
    id: int
    device: str
    rule: str
    detail: str
    state: str
    opened_at: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_at: datetime | None


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_offset: int | None


class AckIn(BaseModel):
    by: str = "api"


def _alert(row: dict[str, Any]) -> AlertOut:
    def at(key: str) -> datetime | None:
        return aware(row[key]) if row.get(key) else None

    return AlertOut(
        id=row["pk"], device=row["device"], rule=row["rule"], detail=row["detail"],
        state=row["state"], opened_at=aware(row["opened_at"]),
        acknowledged_by=row["acknowledged_by"], acknowledged_at=at("acknowledged_at"),
        resolved_at=at("resolved_at"),
    )  # fmt: skip


def add_ops_api(app: FastAPI, db: Database, reader: Any, operator: Any) -> None:
    """``reader`` / ``operator``: the API's bearer-token dependencies."""
    history, alerts = HealthHistory(db), AlertStore(db)

    @app.get("/api/devices/{device}/health", dependencies=[reader])
    def device_health(
        device: str, hours: Annotated[int, Query(ge=1, le=24 * 90)] = 24
    ) -> list[HealthPoint]:
        since = datetime.now(UTC) - timedelta(hours=hours)
        return [HealthPoint(at=t, figures=f) for t, f in history.series(device, since)]

    @app.get("/api/alerts", dependencies=[reader])
    def list_alerts(
        *,
        state: Literal["open", "acknowledged", "resolved"] | None = None,
        device: str | None = None,
        offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> AlertPage:
        rows = alerts.listing(state=state, device=device, limit=limit, offset=offset)
        return AlertPage(
            items=[_alert(r) for r in rows],
            next_offset=offset + limit if len(rows) == limit else None,
        )

    @app.post("/api/alerts/{alert_id}/acknowledge")
    def acknowledge(
        alert_id: Annotated[int, Path(ge=1, le=MAX_ID)], body: AckIn, caller: str = operator
    ) -> AlertOut:
        if alerts.get(alert_id) is None:
            raise HTTPException(404, f"no alert {alert_id}")
        done = alerts.acknowledge(alert_id, body.by[:64], datetime.now(UTC))
        # The token is who acknowledged it (``by`` is only the caller's label).
        record_now(db, caller, "alert.acknowledge", f"alert:{alert_id}",
                   outcome=Outcome.OK if done else Outcome.REFUSED,
                   reason="" if done else "not_open")  # fmt: skip
        if not done:
            raise HTTPException(409, f"alert {alert_id} is not open")
        row = alerts.get(alert_id)
        assert row is not None
        return _alert(row)
