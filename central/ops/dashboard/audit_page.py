"""The admins' audit log page (``/audit-log``) and its CSV export
(``/audit-log.csv``): central's one audit log (:mod:`central.audit`),
filtered by time range, actor, action, outcome and source, newest first in
pages. Admin role only (a refusal is recorded by the dashboard's role check,
``dashboard.request``); every export is itself recorded (``audit.export``).
Times in the form are UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from central.audit import AuditFilter, Outcome, query, record_now
from central.ops.staff import StaffSession

FIELDS = ("since", "until", "actor", "action", "outcome", "source")
MAX_TEXT = 80


def parse_time(text: str) -> datetime | None:
    """``2026-12-01``, ``2026-12-01T09:30`` (UTC) or with an offset."""
    text = text.strip()
    if not text:
        return None
    found = datetime.fromisoformat(text)  # ValueError: the caller says so
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def read_filters(params: dict[str, str]) -> AuditFilter:
    """The query's filters; ValueError names what is wrong."""
    values = {k: params.get(k, "").strip() for k in FIELDS}
    if any(len(v) > MAX_TEXT for v in values.values()):
        raise ValueError(f"a filter is longer than {MAX_TEXT} characters")
    since, until = parse_time(values["since"]), parse_time(values["until"])
    if since and until and until <= since:
        raise ValueError("'until' must be after 'since'")
    return AuditFilter(since, until, values["actor"], values["action"], values["outcome"],
                       values["source"])  # fmt: skip


def add_audit_pages(app: FastAPI, dash: Any) -> None:
    """``dash`` is the :class:`~central.ops.dashboard.core.Dashboard`."""

    @app.get("/audit-log", response_class=HTMLResponse, include_in_schema=False)
    def audit_log_page(request: Request, before: int | None = None) -> Response:
        session: StaffSession = dash.require(request, "admin")
        params = dict(request.query_params)
        shown = {k: params.get(k, "")[:MAX_TEXT] for k in FIELDS}
        try:
            filters = read_filters(params)
        except ValueError as exc:
            record_now(dash.db, f"staff:{session.username}", "audit.view", "audit_log",
                       outcome=Outcome.REFUSED, reason="bad_filter")  # fmt: skip
            refused: Response = dash.page(
                request, "audit_log.html", session, 422, entries=[], total=0, error=str(exc),
                filters=shown, query="", older="", paged=False,
            )  # fmt: skip
            return refused
        entries = query.page(dash.db, filters, before=before)
        kept = {k: v for k, v in shown.items() if v}
        older = ""
        if len(entries) == query.PAGE:
            older = urlencode({**kept, "before": entries[-1].pk})
        shown_page: Response = dash.page(
            request, "audit_log.html", session, entries=entries,
            total=query.count(dash.db, filters), error="", filters=shown,
            query=urlencode(kept), older=older, paged=before is not None,
        )  # fmt: skip
        return shown_page

    @app.get("/audit-log.csv", include_in_schema=False)
    def audit_log_export(request: Request) -> Response:
        session: StaffSession = dash.require(request, "admin")
        try:
            filters = read_filters(dict(request.query_params))
        except ValueError as exc:
            record_now(dash.db, f"staff:{session.username}", "audit.export", "audit_log",
                       outcome=Outcome.REFUSED, reason="bad_filter")  # fmt: skip
            raise HTTPException(422, str(exc)) from None
        rows = min(query.count(dash.db, filters), query.EXPORT_MAX)
        record_now(dash.db, f"staff:{session.username}", "audit.export", "audit_log",
                   detail={**filters.described(), "rows": rows})  # fmt: skip
        stamp = dash.now().strftime("%Y%m%dT%H%M%SZ")
        return StreamingResponse(
            (line.encode("utf-8") for line in query.csv_lines(dash.db, filters)),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="audit-log-{stamp}.csv"'},
        )
