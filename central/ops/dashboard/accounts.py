"""Dashboard routes for staff accounts: the second sign-in step (passkey or
authenticator code), "My account" (passkeys, authenticator app), the admin's
staff page and the one-time enrolment link.

Every form posts the session's CSRF token (the sign-in steps: the login
form's double-submit token); the pending sign-in step is a random token in
an HttpOnly, SameSite=Strict cookie limited to ``/login``, naming a
single-use row of ``staff_challenges``.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import pyotp
from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from central.audit import Outcome, record_now
from central.ops.passkeys import Challenges, PasskeyError
from central.ops.staff import ROLES, SignInStep, StaffError, StaffSession, StaffStore
from central.ops.staff_admin import Enrolment, Issued, StaffAdmin

if TYPE_CHECKING:
    from central.ops.dashboard.core import Dashboard

log = logging.getLogger(__name__)

TOTP_ISSUER = "City kiosk ops"
# The staff page's actions and their audit actions (a refusal is recorded
# under the action that was tried, with outcome "refused").
ADMIN_ACTIONS = {"create": "staff.create", "disable": "staff.disable", "enable": "staff.enable",
                 "role": "staff.role", "reset": "staff.second_factor.reset"}  # fmt: skip
PENDING_TTL = timedelta(minutes=5)


def _pending(dash: Dashboard, request: Request, response: Response, token: str) -> Response:
    response.set_cookie(dash.pending_cookie, token, httponly=True, samesite="strict",
                        secure=dash.secure(request), max_age=int(PENDING_TTL.total_seconds()),
                        path="/login")  # fmt: skip
    return response


def second_factor_page(dash: Dashboard, request: Request, step: SignInStep, csrf: str) -> Response:
    """After a right password: the passkey page (code as fallback), the code
    page, or -- no second factor at all (new or reset) -- the enrolment hint."""
    _, now = dash.gettext(request), dash.now()
    if dash.passkeys is not None and dash.passkeys.usable_count(step.username):
        token, options = dash.passkeys.authentication_options(step.username, now)
        page = dash.page(request, "login_passkey.html", None, csrf=csrf, options=options,
                         username=step.username, has_totp=step.has_totp)  # fmt: skip
        return _pending(dash, request, page, token)
    if step.has_totp:
        token = Challenges(dash.db).issue(step.username, "signin", "", now, ttl=PENDING_TTL)
        page = dash.page(request, "login_code.html", None, csrf=csrf, username=step.username)
        return _pending(dash, request, page, token)
    log.warning("login without a second factor", extra={"user": step.username})
    dash.audit_sign_in(request, Outcome.REFUSED, "no_second_factor", account=step.username,
                       factor="password")  # fmt: skip
    error = _("Your second factor was reset: open the enrolment link an administrator gave you.")
    return dash.page(request, "login.html", None, 403, csrf=csrf, error=error)


def add_account_routes(app: FastAPI, dash: Dashboard) -> None:
    _sign_in_steps(app, dash)
    _my_account(app, dash)
    _staff_admin(app, dash)
    _enrolment(app, dash)


def _sign_in_steps(app: FastAPI, dash: Dashboard) -> None:
    @app.post("/login/passkey", include_in_schema=False)
    def passkey_sign_in(
        request: Request, credential: Annotated[str, Form()], csrf: Annotated[str, Form()]
    ) -> Response:
        refused = dash.login_refused(request, csrf, "passkey")
        if refused is not None:
            return refused
        if dash.passkeys is None:
            raise HTTPException(404, "passkeys are not set up")
        username = ""
        try:
            username = dash.passkeys.authenticate(
                request.cookies.get(dash.pending_cookie, ""), credential[:20000], dash.now()
            )
            token, session = dash.staff.second_factor_done(username, dash.now())
        except (PasskeyError, StaffError) as exc:
            return dash.sign_in_failed(request, exc, username, csrf, "passkey")
        return dash.signed_in(request, token, session, "passkey")

    @app.post("/login/code", include_in_schema=False)
    def code_sign_in(
        request: Request, code: Annotated[str, Form()], csrf: Annotated[str, Form()]
    ) -> Response:
        refused = dash.login_refused(request, csrf, "totp")
        if refused is not None:
            return refused
        pending = request.cookies.get(dash.pending_cookie, "")
        taken = Challenges(dash.db).take(pending, "signin", dash.now())
        try:
            if taken is None:
                raise PasskeyError("The sign-in expired. Please start again.", reason="expired")
            token, session = dash.staff.second_factor_totp(taken[0], code.strip(), dash.now())
        except (PasskeyError, StaffError) as exc:
            return dash.sign_in_failed(request, exc, taken[0] if taken else "", csrf, "totp")
        return dash.signed_in(request, token, session, "totp")


def _account_page(dash: Dashboard, request: Request, session: StaffSession, code: int = 200,
                  **extra: object) -> Response:  # fmt: skip
    passkeys = dash.passkeys.passkeys(session.username) if dash.passkeys else []
    has_totp = StaffStore(dash.db).has_totp(session.username)
    return dash.page(request, "account.html", session, code, passkeys=passkeys,
                     passkeys_on=dash.passkeys is not None, has_totp=has_totp,
                     **{"error": "", "notice": "", "totp_secret": "", **extra})  # fmt: skip


def _own(dash: Dashboard, session: StaffSession, action: str, reason: str = "") -> None:
    """An entry of a staff member's change to their own account (refused when
    ``reason`` is given); where from is the request's (central.audit.SOURCE)."""
    me = f"staff:{session.username}"
    record_now(dash.db, me, action, me, outcome=Outcome.REFUSED if reason else Outcome.OK,
               reason=reason)  # fmt: skip


def _password_refused(dash: Dashboard, request: Request, session: StaffSession, password: str,
                      action: str) -> Response | None:  # fmt: skip
    """The password asked again before adding a second factor (``action``:
    what it was for); a refusal page or None."""
    try:
        dash.staff.confirm_password(session.username, password, dash.now())
    except StaffError as exc:
        _own(dash, session, action, exc.reason)  # wrong_password, locked, disabled
        log.warning("second factor change refused: password", extra={
            "user": session.username, "what": action, "error": type(exc).__name__})  # fmt: skip
        error = dash.gettext(request)("The password is wrong: nothing was changed.")
        return _account_page(dash, request, session, 403, error=error)
    return None


def _my_account(app: FastAPI, dash: Dashboard) -> None:
    @app.get("/account", response_class=HTMLResponse, include_in_schema=False)
    def account(request: Request) -> Response:
        return _account_page(dash, request, dash.require(request))

    @app.post("/account/passkeys/options", include_in_schema=False)
    def passkey_options(request: Request, csrf: Annotated[str, Form()]) -> Response:
        session = dash.require(request)
        dash.check_csrf(session, csrf)
        if dash.passkeys is None:
            raise HTTPException(404, "passkeys are not set up")
        token, options = dash.passkeys.registration_options(session.username, dash.now())
        return JSONResponse({"token": token, "options": json.loads(options)})

    @app.post("/account/passkeys", include_in_schema=False)
    def add_passkey(
        request: Request, *, csrf: Annotated[str, Form()], credential: Annotated[str, Form()],
        token: Annotated[str, Form()], password: Annotated[str, Form()],
        label: Annotated[str, Form()] = "",
    ) -> Response:  # fmt: skip
        session = dash.require(request)
        dash.check_csrf(session, csrf)
        _ = dash.gettext(request)
        if dash.passkeys is None:
            raise HTTPException(404, "passkeys are not set up")
        refused = _password_refused(dash, request, session, password, "staff.passkey.register")
        if refused is not None:
            return refused
        try:
            dash.passkeys.register(session.username, token, credential[:20000], label, dash.now())
        except PasskeyError as exc:
            _own(dash, session, "staff.passkey.register", exc.reason)
            return _account_page(dash, request, session, 400, error=_(str(exc)))
        return _account_page(dash, request, session, notice=_("Passkey added."))

    @app.post("/account/passkeys/remove", include_in_schema=False)
    def remove_passkey(
        request: Request, csrf: Annotated[str, Form()], credential_id: Annotated[str, Form()]
    ) -> Response:
        session = dash.require(request)
        dash.check_csrf(session, csrf)
        _ = dash.gettext(request)
        try:
            if dash.passkeys is None:
                raise PasskeyError("No such passkey.")
            dash.passkeys.remove(session.username, credential_id, f"staff:{session.username}")
        except PasskeyError as exc:
            _own(dash, session, "staff.passkey.remove", exc.reason)
            return _account_page(dash, request, session, 409, error=_(str(exc)))
        return _account_page(dash, request, session, notice=_("Passkey removed."))

    @app.post("/account/totp", include_in_schema=False)
    def new_totp(
        request: Request, csrf: Annotated[str, Form()], password: Annotated[str, Form()]
    ) -> Response:
        session = dash.require(request)
        dash.check_csrf(session, csrf)
        refused = _password_refused(dash, request, session, password, "staff.totp.switch")
        if refused is not None:
            return refused
        secret = pyotp.random_base32()
        token = Challenges(dash.db).issue(session.username, "totp", secret, dash.now(),
                                          ttl=timedelta(minutes=10))  # fmt: skip
        uri = pyotp.TOTP(secret).provisioning_uri(name=session.username, issuer_name=TOTP_ISSUER)
        return _account_page(dash, request, session, totp_secret=secret, totp_uri=uri,
                             totp_token=token)  # fmt: skip

    @app.post("/account/totp/confirm", include_in_schema=False)
    def confirm_totp(
        request: Request, csrf: Annotated[str, Form()], token: Annotated[str, Form()],
        code: Annotated[str, Form()],
    ) -> Response:  # fmt: skip
        session = dash.require(request)
        dash.check_csrf(session, csrf)
        _ = dash.gettext(request)
        taken = Challenges(dash.db).take(token, "totp", dash.now())
        matches = taken is not None and pyotp.TOTP(taken[1]).verify(
            code.strip(), for_time=dash.now(), valid_window=1
        )
        if taken is None or taken[0] != session.username or not matches:
            _own(dash, session, "staff.totp.switch", "expired" if taken is None else "wrong_code")
            return _account_page(dash, request, session, 400,
                                 error=_("That code did not match: start again."))  # fmt: skip
        StaffStore(dash.db).set_totp_secret(session.username, taken[1])
        _own(dash, session, "staff.totp.switch")
        return _account_page(dash, request, session, notice=_("Authenticator app switched."))


def _staff_page(dash: Dashboard, request: Request, session: StaffSession, code: int = 200, *,
                error: str = "", issued: Issued | None = None) -> Response:  # fmt: skip
    base = str(request.base_url).rstrip("/") if not dash.web.public_url else dash.web.public_url
    link = f"{base}/enrol/{issued.enrol_token}" if issued else ""
    return dash.page(request, "staff.html", session, code, accounts=StaffAdmin(dash.db).accounts(),
                     roles=ROLES, error=error, issued=issued, enrol_url=link)  # fmt: skip


def _staff_admin(app: FastAPI, dash: Dashboard) -> None:
    admin = StaffAdmin(dash.db)

    @app.get("/staff", response_class=HTMLResponse, include_in_schema=False)
    def staff_page(request: Request) -> Response:
        return _staff_page(dash, request, dash.require(request, "admin"))

    @app.post("/staff", include_in_schema=False)
    def create(
        request: Request, csrf: Annotated[str, Form()], username: Annotated[str, Form()],
        role: Annotated[str, Form()],
    ) -> Response:  # fmt: skip
        session = dash.require(request, "admin")
        dash.check_csrf(session, csrf)
        return _admin_action(dash, request, session, "create", username=username.strip(),
                             run=lambda: admin.create(f"staff:{session.username}", username.strip(),
                                                  role, dash.now()))  # fmt: skip

    @app.post("/staff/{username}/{action}", include_in_schema=False)
    def change(
        request: Request, username: str, action: str, csrf: Annotated[str, Form()],
        role: Annotated[str, Form()] = "",
    ) -> Response:  # fmt: skip
        session = dash.require(request, "admin")
        dash.check_csrf(session, csrf)
        actions = {
            "disable": lambda: admin.set_disabled(session, username, True),
            "enable": lambda: admin.set_disabled(session, username, False),
            "role": lambda: admin.set_role(session, username, role),
            "reset": lambda: admin.reset_second_factor(session, username, dash.now()),
        }
        if action not in actions:
            raise HTTPException(404, f"no action {action}")
        return _admin_action(dash, request, session, action, username=username,
                             run=actions[action])  # fmt: skip


def _admin_action(dash: Dashboard, request: Request, session: StaffSession, action: str, *,
                  username: str, run: Callable[[], object]) -> Response:  # fmt: skip
    try:
        result = run()
    except StaffError as exc:
        record_now(dash.db, f"staff:{session.username}", ADMIN_ACTIONS[action],
                   f"staff:{username[:64]}", outcome=Outcome.REFUSED,
                   reason=exc.reason)  # fmt: skip
        where = {"user": session.username, "action": action, "target": username}
        log.warning("staff change refused", extra={**where, "reason": str(exc)})
        return _staff_page(dash, request, session, 409, error=dash.gettext(request)(str(exc)))
    log.info("staff changed", extra={"user": session.username, "action": action,
                                     "target": username})  # fmt: skip
    issued = result if isinstance(result, Issued) else None
    return _staff_page(dash, request, session, issued=issued)


def _enrolment(app: FastAPI, dash: Dashboard) -> None:
    enrolment = Enrolment(dash.db, dash.staff)

    @app.get("/enrol/{token}", response_class=HTMLResponse, include_in_schema=False)
    def enrol_form(request: Request, token: str) -> Response:
        _ = dash.gettext(request)
        valid = enrolment.valid(token, dash.now())
        csrf = secrets.token_urlsafe(24)
        error = "" if valid else _("This enrolment link is not valid (used or expired).")
        response = dash.page(request, "enrol.html", None, 200 if valid else 404, token=token,
                             valid=valid, csrf=csrf, error=error, secret="")  # fmt: skip
        response.set_cookie(dash.csrf_cookie, csrf, httponly=True, samesite="strict",
                            max_age=900, secure=dash.secure(request))  # fmt: skip
        return response

    @app.post("/enrol/{token}", include_in_schema=False)
    def enrol(
        request: Request, token: str, username: Annotated[str, Form()],
        password: Annotated[str, Form()], csrf: Annotated[str, Form()],
    ) -> Response:  # fmt: skip
        refused = dash.login_refused(request, csrf, "enrolment")
        if refused is not None:
            return refused
        _ = dash.gettext(request)
        try:
            secret, (session_token, session) = enrolment.enrol(token, username, password,
                                                               dash.now())  # fmt: skip
        except StaffError as exc:
            log.warning("enrolment refused", extra={"user": username, "reason": str(exc)})
            account = "" if exc.reason == "unknown_user" else f"staff:{username}"
            record_now(dash.db, account or "anonymous", "staff.enrol", account or "staff",
                       outcome=Outcome.REFUSED, reason=exc.reason)  # fmt: skip
            return dash.page(request, "enrol.html", None, 403, token=token, valid=True,
                             csrf=csrf, secret="",
                             error=_("User name, password or link is wrong."))  # fmt: skip
        uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=TOTP_ISSUER)
        page = dash.page(request, "enrol.html", session, secret=secret, uri=uri, error="",
                         valid=True, token="", csrf="")  # fmt: skip
        return _with_session(dash, request, page, session_token, session)


def _with_session(dash: Dashboard, request: Request, page: Response, token: str,
                  session: StaffSession) -> Response:  # fmt: skip
    signed = dash.signed_in(request, token, session, "enrolment")
    for key, value in signed.headers.items():
        if key.lower() == "set-cookie":
            page.headers.append("set-cookie", value)
    return page
