"""Dashboard routes: sign-in, fleet, device, alerts, events.

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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from central.audit import Outcome, record_now
from central.audit.web import route_of
from central.db.engine import Database
from central.ops.dashboard import fleet as fleet_model
from central.ops.dashboard.accounts import add_account_routes, second_factor_page
from central.ops.dashboard.audit_page import add_audit_pages
from central.ops.dashboard.charts import sparkline
from central.ops.dashboard.live import add_live_routes
from central.ops.passkeys import ClonedAuthenticator, PasskeyError, PasskeyStore, RelyingParty
from central.ops.service import AlertStore, HealthHistory
from central.ops.staff import (
    AccountDisabled,
    AccountLocked,
    StaffError,
    StaffSession,
    StaffStore,
)
from central.websec import DEFAULT_WEB, AttemptLimiter, WebOptions, client_address, secure_cookies
from foundation.i18n import Catalogues

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
CATALOGUES = Catalogues(HERE / "locale", "dashboard", "ja")
SESSION_COOKIE, CSRF_COOKIE, LANG_COOKIE = "kiosk_session", "kiosk_login_csrf", "kiosk_lang"
# The pending second step of a sign-in (password right, passkey or code next).
PENDING_COOKIE = "kiosk_signin_step"
FLEET_PAGE = 100  # rows per page of the fleet table (sorting and filters span all)
STATIC = "/static/dashboard"  # the style sheet and the staff call script (CSP: no inline)


def language(request: Request) -> str:
    known = CATALOGUES.languages()
    chosen = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE, "")
    if chosen in known:
        return chosen
    accept = request.headers.get("accept-language", "")
    for part in accept.split(","):
        code = part.split(";")[0].strip().split("-")[0]
        if code in known:
            return code
    return CATALOGUES.default


class Dashboard:
    csrf_cookie, pending_cookie = CSRF_COOKIE, PENDING_COOKIE

    def __init__(self, db: Database, now: Callable[[], datetime] | None = None,
                 template_dirs: Sequence[Path] = (), *,
                 web: WebOptions = DEFAULT_WEB) -> None:  # fmt: skip
        self.db = db
        self.web = web
        self.proxies = web.networks()
        # Pages mounted by other subsystems (the staff reservation pages) add
        # their folders; they extend this folder's base.html.
        self.templates = Jinja2Templates(directory=[HERE / "templates", *template_dirs])
        self.staff = StaffStore(db)
        # Passkeys need the public address (RP id and origin); without it, TOTP only.
        rp = RelyingParty.from_public_url(web.public_url)
        self.passkeys = PasskeyStore(db, rp) if rp is not None else None
        self.alerts = AlertStore(db)
        self.history = HealthHistory(db)
        self.limiter = AttemptLimiter(db, "dashboard", web.attempts_per_address,
                                      web.attempts_window)  # fmt: skip
        self.now = now or (lambda: datetime.now(UTC))

    def page(self, request: Request, template: str, session: StaffSession | None,
             code: int = 200, **context: Any) -> HTMLResponse:  # fmt: skip
        lang = language(request)
        response = self.templates.TemplateResponse(
            request, template,
            {"_": CATALOGUES.get(lang).gettext, "lang": lang, "languages": CATALOGUES.languages(),
             "session": session, "static": STATIC, **context},
            status_code=code,
        )  # fmt: skip
        if request.query_params.get("lang") == lang:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict",
                                secure=self.secure(request))  # fmt: skip
        return response

    def secure(self, request: Request) -> bool:
        return secure_cookies(request, self.web.public_url)

    @staticmethod
    def gettext(request: Request) -> Callable[[str], str]:
        return CATALOGUES.get(language(request)).gettext

    def session(self, request: Request) -> StaffSession | None:
        token = request.cookies.get(SESSION_COOKIE)
        return self.staff.session(token, self.now()) if token else None

    def require(self, request: Request, role: str = "viewer") -> StaffSession:
        session = self.session(request)
        if session is None:
            raise HTTPException(303, headers={"Location": "/login"})
        if not session.may(role):
            record_now(self.db, f"staff:{session.username}", "dashboard.request",
                       request.url.path, outcome=Outcome.REFUSED, reason="role",
                       detail={"method": request.method, "needs": role,
                               **route_of(request.scope)})  # fmt: skip
            raise HTTPException(403, f"this needs the {role} role")
        return session

    def audit_sign_in(self, request: Request, outcome: Outcome, reason: str = "", *,
                      account: str = "", factor: str = "") -> None:  # fmt: skip
        """One ``staff.sign_in`` entry per attempt. Who only for an account
        that exists: what was typed as a user name may be a password typed in
        the wrong field. ``factor``: password, totp, passkey or enrolment."""
        actor = f"staff:{account}" if account else "anonymous"
        record_now(self.db, actor, "staff.sign_in", actor if account else "staff",
                   source=client_address(request, self.proxies), outcome=outcome,
                   reason=reason, detail={"factor": factor} if factor else None)  # fmt: skip

    def login_refused(self, request: Request, csrf: str, factor: str = "") -> Response | None:
        """The sign-in forms' double-submit token and the per-address limit."""
        _ = self.gettext(request)
        client = client_address(request, self.proxies)
        cookie = request.cookies.get(CSRF_COOKIE, "")
        if not cookie or not secrets.compare_digest(cookie, csrf):
            log.warning("login csrf mismatch", extra={"client": client})
            self.audit_sign_in(request, Outcome.REFUSED, "form_expired", factor=factor)
            return self.page(request, "login.html", None, 403, csrf=cookie,
                             error=_("The form expired. Please try again."))  # fmt: skip
        if not self.limiter.allow(client, self.now()):
            log.warning("login rate limited", extra={"client": client})
            self.audit_sign_in(request, Outcome.REFUSED, "address_limit", factor=factor)
            return self.page(request, "login.html", None, 429, csrf=cookie,
                             error=_("Too many attempts. Wait a few minutes."))  # fmt: skip
        return None

    def sign_in_failed(self, request: Request, exc: StaffError | PasskeyError, user: str,
                       csrf: str, factor: str) -> Response:  # fmt: skip
        """``user``: the account of the attempt as far as known (typed or pending)."""
        _ = self.gettext(request)
        where = {"user": user, "client": client_address(request, self.proxies)}
        if isinstance(exc, AccountLocked):
            log.warning("login on locked account", extra=where)
            error, code = _("This account is locked for a while. Ask an administrator."), 403
        elif isinstance(exc, AccountDisabled):
            log.warning("login on disabled account", extra=where)
            error, code = _("This account is disabled. Ask an administrator."), 403
        elif isinstance(exc, PasskeyError):
            user = exc.username or user
            log.warning("login passkey refused", extra={**where, "reason": str(exc)})
            error, code = _(str(exc)), 403 if isinstance(exc, ClonedAuthenticator) else 401
        else:
            log.warning("login failed", extra=where)
            error, code = _("User name, password or code is wrong."), 401
        account = "" if exc.reason == "unknown_user" else user
        self.audit_sign_in(request, Outcome.REFUSED, exc.reason, account=account, factor=factor)
        response = self.page(request, "login.html", None, code, csrf=csrf, error=error)
        response.delete_cookie(PENDING_COOKIE, path="/login")
        return response

    def signed_in(self, request: Request, token: str, session: StaffSession,
                  factor: str) -> Response:  # fmt: skip
        log.info("login", extra={"user": session.username, "role": session.role})
        self.audit_sign_in(request, Outcome.OK, account=session.username, factor=factor)
        response = RedirectResponse("/", status_code=303)
        max_age = int((session.expires_at - self.now()).total_seconds())
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                            secure=self.secure(request), max_age=max_age)  # fmt: skip
        response.delete_cookie(CSRF_COOKIE)
        response.delete_cookie(PENDING_COOKIE, path="/login")
        return response

    def check_csrf(self, session: StaffSession, token: str) -> None:
        if not secrets.compare_digest(session.csrf, token):
            log.warning("csrf token mismatch", extra={"user": session.username})
            record_now(self.db, f"staff:{session.username}", "dashboard.request", "form",
                       outcome=Outcome.REFUSED, reason="csrf")  # fmt: skip
            raise HTTPException(403, "form expired or forged: reload the page and try again")


def add_dashboard(
    app: FastAPI, db: Database, now: Callable[[], datetime] | None = None,
    template_dirs: Sequence[Path] = (), staff_calls_changed: Callable[[], None] = lambda: None,
    *, web: WebOptions = DEFAULT_WEB,
) -> Dashboard:  # fmt: skip
    """Mount the dashboard's pages on ``app``; ``staff_calls_changed`` is
    called after staff acknowledge or finish a call (wakes the relay)."""
    dash = Dashboard(db, now, template_dirs, web=web)
    app.mount(STATIC, StaticFiles(directory=HERE / "static"), name="dashboard-static")
    _auth_routes(app, dash)
    add_account_routes(app, dash)
    _fleet_routes(app, dash)
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


def _fleet_routes(app: FastAPI, dash: Dashboard) -> None:
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
