"""``GET /api/quarantine``: events whose envelope was valid and whose content
central refused (docs/central.md, "Quarantine"). The same reader token as
``GET /api/events``; the refused data itself was never stored."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, Query
from pydantic import BaseModel

from central.db.engine import aware
from central.ingest.store import IngestStore


class QuarantinedOut(BaseModel):
    pk: int
    event_id: str
    device: str
    seq: int
    type: str
    # The envelope as the device sent it, "data" replaced by "data_withheld": true.
    envelope: dict[str, Any]
    reason: str
    received_at: datetime


class QuarantinePage(BaseModel):
    items: list[QuarantinedOut]
    # The ``after`` of the next page; null on the last page.
    next: str | None = None


def add_quarantine_route(
    app: FastAPI, ingest: IngestStore, *, reader: Any, page_size_max: int
) -> None:
    @app.get("/api/quarantine", dependencies=[reader])
    def list_quarantine(
        *,
        device: str | None = None,
        after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
        limit: Annotated[int, Query(ge=1)] = 100,
    ) -> QuarantinePage:
        """Quarantined events in the order central received them, one page
        after row ``after`` (pass the previous page's ``next``)."""
        limit = min(limit, page_size_max)
        rows = ingest.query_quarantine(device=device, after=after, limit=limit)
        items = [QuarantinedOut(**{**r, "received_at": aware(r["received_at"])}) for r in rows]
        nxt = str(items[-1].pk) if len(items) == limit else None
        return QuarantinePage(items=items, next=nxt)
