"""The dashboard's shared state: templates, sessions, the sign-in checks and
their audit entries, CSRF. The route modules (``views``, ``accounts``, ...)
import it; it imports none of them.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from central.audit import Outcome, record_now
from central.audit.web import route_of
from central.db.engine import Database
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
