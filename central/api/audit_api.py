"""``GET /api/audit``: central's audit log for an admin token, filtered
(time range, actor, action, outcome, source) and paged newest first
(docs/ops.md, "Audit log"). Reading it is itself recorded (``audit.read``)."""

from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Query
from pydantic import AwareDatetime, BaseModel

from central.audit import AuditFilter, query, record_now
from central.db.engine import Database

MAX_LIMIT = 1000


class AuditOut(BaseModel):
    id: int
    at: AwareDatetime
    actor: str
    action: str
    subject: str
    source: str
    outcome: str
    reason: str
    detail: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditOut]
    next: str | None = None  # pass as ``before`` for the next (older) page


def add_audit_route(app: FastAPI, db: Database, admin: Any) -> None:
    """``admin``: the dependency that needs an admin token (it names the caller)."""

    @app.get("/api/audit")
    def list_audit(
        *,
        caller: Annotated[str, admin],
        since: AwareDatetime | None = None,
        until: AwareDatetime | None = None,
        actor: Annotated[str, Query(max_length=80)] = "",
        action: Annotated[str, Query(max_length=48)] = "",
        outcome: Literal["", "ok", "refused", "failed"] = "",
        source: Annotated[str, Query(max_length=64)] = "",
        before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    ) -> AuditPage:
        if since is not None and until is not None and until <= since:
            raise HTTPException(422, "until must be after since")
        filters = AuditFilter(since, until, actor, action, outcome, source)
        found = query.page(db, filters, before=before, limit=limit)
        record_now(db, caller, "audit.read", "audit_log",
                   detail={**filters.described(), "rows": len(found)})  # fmt: skip
        nxt = str(found[-1].pk) if len(found) == limit else None
        return AuditPage(items=[AuditOut(**query.as_dict(e)) for e in found], next=nxt)
