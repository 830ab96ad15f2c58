"""Dashboard routes: sign-in, fleet, device, alerts, events (the state they
share is :class:`~central.ops.dashboard.core.Dashboard`).

Sessions are a cookie holding a random token (HttpOnly, SameSite=Strict,
Secure when the public address is https); every POST carries the session's
CSRF token, and the sign-in form a double-submit token. Sign-in attempts are
limited per client address (counted in the database, shared by all workers;
X-Forwarded-For only from trusted proxies) on top of the per-account
lockout. Language: ``?lang=`` (remembered in a
cookie), else the browser's Accept-Language, else Japanese.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from central.audit import Outcome, record_now
from central.commands import CommandService
from central.db.engine import Database
from central.ops.dashboard import fleet as fleet_model
from central.ops.dashboard.accounts import add_account_routes, second_factor_page
from central.ops.dashboard.audit_page import add_audit_pages
from central.ops.dashboard.charts import sparkline
from central.ops.dashboard.commands_page import DEVICE_COMMANDS, add_command_pages
from central.ops.dashboard.core import (
    CSRF_COOKIE,
    FLEET_PAGE,
    HERE,
    SESSION_COOKIE,
    STATIC,
    Dashboard,
)
from central.ops.dashboard.live import add_live_routes
from central.ops.staff import StaffError
from central.websec import DEFAULT_WEB, WebOptions

log = logging.getLogger(__name__)


def add_dashboard(
    app: FastAPI, db: Database, now: Callable[[], datetime] | None = None,
    template_dirs: Sequence[Path] = (), staff_calls_changed: Callable[[], None] = lambda: None,
    *, web: WebOptions = DEFAULT_WEB, commands: CommandService | None = None,
) -> Dashboard:  # fmt: skip
    """Mount the dashboard's pages on ``app``; ``staff_calls_changed`` is
    called after staff acknowledge or finish a call (wakes the relay);
    ``commands`` issues remote commands (None: not configured)."""
    dash = Dashboard(db, now, template_dirs, web=web)
    commands = commands or CommandService(db, None)
    app.mount(STATIC, StaticFiles(directory=HERE / "static"), name="dashboard-static")
    _auth_routes(app, dash)
    add_account_routes(app, dash)
    _fleet_routes(app, dash, commands)
    add_command_pages(app, dash, commands)
    _alert_routes(app, dash)
    add_live_routes(app, dash, staff_calls_changed)
    add_audit_pages(app, dash)
    return dash


def _auth_routes(app: FastAPI, dash: Dashboard) -> None:
    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request) -> Response:
        token = secrets.token_urlsafe(24)
        response = dash.page(request, "login.html", None, csrf=token, error="")
        response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", max_age=900,
                            secure=dash.secure(request))  # fmt: skip
        return response

    @app.post("/login", include_in_schema=False)
    def login(
        request: Request, username: Annotated[str, Form()], password: Annotated[str, Form()],
        csrf: Annotated[str, Form()], code: Annotated[str, Form()] = "",
    ) -> Response:  # fmt: skip
        refused = dash.login_refused(request, csrf, "totp" if code.strip() else "password")
        if refused is not None:
            return refused
        cookie = request.cookies.get(CSRF_COOKIE, "")
        try:
            if not code.strip():  # the passkey (or the code) comes on the next page
                step = dash.staff.password_step(username, password, dash.now())
                return second_factor_page(dash, request, step, cookie)
            token, session = dash.staff.sign_in(username, password, code.strip(), dash.now())
        except StaffError as exc:
            return dash.sign_in_failed(request, exc, username, cookie,
                                       "totp" if code.strip() else "password")  # fmt: skip
        return dash.signed_in(request, token, session, "totp")

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request, csrf: Annotated[str, Form()]) -> Response:
        session = dash.require(request)
        dash.check_csrf(session, csrf)
        dash.staff.sign_out(request.cookies.get(SESSION_COOKIE, ""))
        record_now(dash.db, f"staff:{session.username}", "staff.sign_out",
                   f"staff:{session.username}")  # fmt: skip
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response


def _fleet_routes(app: FastAPI, dash: Dashboard, commands: CommandService) -> None:
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def fleet_page(request: Request, *, sort: str = "id", desc: bool = False, status: str = "",
                   facility: str = "", q: str = "", page: int = 0) -> Response:  # fmt: skip
        session = dash.require(request)
        rows = fleet_model.fleet(dash.db, dash.alerts.open_counts(), sort=sort, descending=desc,
                                 status=status, facility=facility, query=q)  # fmt: skip
        counts = {s: sum(1 for r in rows if r.status == s) for s in ("online", "offline")}
        pages = max(1, -(-len(rows) // FLEET_PAGE))
        page = min(max(page, 0), pages - 1)
        shown = rows[page * FLEET_PAGE : (page + 1) * FLEET_PAGE]
        filters: dict[str, Any] = {"sort": sort, "desc": desc, "status": status,
                                   "facility": facility, "q": q}  # fmt: skip
        return dash.page(request, "fleet.html", session, rows=shown, counts=counts,
                         total=len(rows), page=page, pages=pages, **filters)  # fmt: skip

    @app.get("/devices/{device_id}", response_class=HTMLResponse, include_in_schema=False)
    def device_page(request: Request, device_id: str, hours: int = 24) -> Response:
        session = dash.require(request)
        found = fleet_model.device(dash.db, device_id)
        if found is None:
            raise HTTPException(404, f"no device {device_id}")
        hours = max(1, min(hours, 24 * 90))
        series = dash.history.series(device_id, dash.now() - timedelta(hours=hours))
        charts = {
            key: sparkline([(t, f[key]) for t, f in series if key in f])
            for key in ("cpu_temp_c", "outbox_depth", "disk_free_mb", "reservation_age_s")
        }
        return dash.page(
            request, "device.html", session, device=found, charts=charts, hours=hours,
            alerts=dash.alerts.listing(device=device_id, limit=20),
            events=fleet_model.recent_events(dash.db, device=device_id, limit=20),
            commands=commands.listing(device=device_id, limit=20) if session.may("operator")
            else [], commands_on=commands.configured, command_names=DEVICE_COMMANDS,
            doors=sorted(commands.facts(device_id).doors or ()),
            max_unlock=commands.max_unlock_seconds,
        )  # fmt: skip

    @app.get("/events", response_class=HTMLResponse, include_in_schema=False)
    def events_page(request: Request, device: str = "", type: str = "", page: int = 0) -> Response:
        session = dash.require(request)
        page = max(0, page)
        rows = fleet_model.recent_events(dash.db, device=device, type_prefix=type, limit=100,
                                         offset=page * 100)  # fmt: skip
        return dash.page(request, "events.html", session, events=rows, device=device, type=type,
                         page=page)  # fmt: skip


def _alert_routes(app: FastAPI, dash: Dashboard) -> None:
    @app.get("/alerts", response_class=HTMLResponse, include_in_schema=False)
    def alerts_page(request: Request, state: str = "") -> Response:
        session = dash.require(request)
        state = state if state in ("open", "acknowledged", "resolved") else ""
        rows = dash.alerts.listing(state=state or None, limit=200)
        return dash.page(request, "alerts.html", session, alerts=rows, state=state)

    @app.post("/alerts/{alert_id}/ack", include_in_schema=False)
    def acknowledge(request: Request, alert_id: int, csrf: Annotated[str, Form()]) -> Response:
        session = dash.require(request, "operator")
        dash.check_csrf(session, csrf)
        done = dash.alerts.acknowledge(alert_id, session.username, dash.now())
        record_now(dash.db, f"staff:{session.username}", "alert.acknowledge",
                   f"alert:{alert_id}", outcome=Outcome.OK if done else Outcome.REFUSED,
                   reason="" if done else "not_open")  # fmt: skip
        log.info("alert acknowledged", extra={"alert": alert_id, "user": session.username})
        return RedirectResponse("/alerts", status_code=303)
