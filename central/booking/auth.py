"""Sign-in pages: ask for a link and code by e-mail, type the code, open the
link (a button on the page confirms it: mail scanners that open links must
not use them up), send a new link, sign out, and optional self-registration.

The page after asking is the same whether or not the address is a member's.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from central.booking.i18n import CATALOGUES
from central.booking.signin import Issued, Outcome
from central.booking.site import PREFIX, SESSION_COOKIE, Site, Visitor
from central.errors import ConflictError, NotFoundError
from central.reservations.members import MemberIn
from foundation.languages import match

log = logging.getLogger(__name__)
FormStr = Annotated[str, Form()]


def add_auth_routes(router: APIRouter, site: Site) -> None:
    @router.get("/sign-in")
    def sign_in_page(request: Request) -> Response:
        visitor = site.visitor(request)
        if visitor.member is not None:
            return RedirectResponse(f"{PREFIX}/", status_code=303)
        return site.page(request, visitor, "sign_in.html")

    @router.post("/sign-in")
    def ask(
        request: Request, tasks: BackgroundTasks, email: FormStr, csrf: FormStr = ""
    ) -> Response:
        visitor = site.visitor(request)
        site.check_form(request, visitor, csrf)
        site.sign_ins.purge(site.now())
        request_id, issued = site.sign_ins.request(email[:254], site.now())
        _mail(site, tasks, issued)
        return _check_mail(site, request, visitor, request_id)

    @router.post("/sign-in/code")
    def type_code(
        request: Request, request_id: FormStr, code: FormStr, csrf: FormStr = ""
    ) -> Response:
        visitor = site.visitor(request)
        site.check_form(request, visitor, csrf)
        outcome, token = site.sign_ins.redeem_code(request_id, code, site.now())
        if token is not None:
            log.info("member signed in", extra={"how": "code"})
            return site.signed_in(request, token)
        if outcome is Outcome.WRONG_CODE:
            error = visitor.words("That code is not right. Check the mail and try again.")
            return _check_mail(site, request, visitor, request_id, error=error, status=400)
        # Used up, expired, or a request that never was: one answer for all.
        return site.page(request, visitor, "link_problem.html", 400, token="",
                         problem="code")  # fmt: skip

    @router.get("/sign-in/link/{token}")
    def open_link(request: Request, token: str) -> Response:
        visitor = site.visitor(request)
        outcome = site.sign_ins.check_link(token, site.now())
        if outcome is not Outcome.SIGNED_IN:
            return _link_problem(site, request, visitor, token, outcome)
        return site.page(request, visitor, "link.html", token=token)

    @router.post("/sign-in/link/{token}")
    def use_link(request: Request, token: str, csrf: FormStr = "") -> Response:
        visitor = site.visitor(request)
        site.check_form(request, visitor, csrf)
        outcome, session = site.sign_ins.redeem_link(token, site.now())
        if session is None:
            return _link_problem(site, request, visitor, token, outcome)
        log.info("member signed in", extra={"how": "link"})
        return site.signed_in(request, session)

    @router.post("/sign-in/renew")
    def renew(
        request: Request, tasks: BackgroundTasks, token: FormStr, csrf: FormStr = ""
    ) -> Response:
        visitor = site.visitor(request)
        site.check_form(request, visitor, csrf)
        issued = site.sign_ins.renew(token, site.now())
        _mail(site, tasks, issued)
        return _check_mail(site, request, visitor, issued.request_id if issued else "")

    @router.post("/sign-out")
    def sign_out(request: Request, csrf: FormStr = "") -> Response:
        visitor = site.visitor(request)
        site.check_form(request, visitor, csrf)
        site.sign_ins.close_session(request.cookies.get(SESSION_COOKIE, ""))
        response = RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return response

    _registration_routes(router, site)


def _registration_routes(router: APIRouter, site: Site) -> None:
    @router.get("/register")
    def register_page(request: Request) -> Response:
        visitor = site.visitor(request)
        if not site.settings.self_registration:
            raise NotFoundError("registration is off")
        return site.page(request, visitor, "register.html", error="")

    @router.post("/register")
    def register(
        request: Request, tasks: BackgroundTasks, *, name: FormStr, email: FormStr,
        language: FormStr, csrf: FormStr = "",
    ) -> Response:  # fmt: skip
        visitor = site.visitor(request)
        if not site.settings.self_registration:
            raise NotFoundError("registration is off")
        site.check_form(request, visitor, csrf)
        try:
            # An offered language in its registry code; anything else: the page's.
            chosen = match(language) if language else None
            language = chosen if chosen in CATALOGUES.languages() else visitor.lang
            member = MemberIn(display_name=name.strip(), email=email, language=language)
        except ValidationError:
            error = visitor.words("Please give your name and a valid e-mail address.")
            return site.page(request, visitor, "register.html", 400, error=error)
        with contextlib.suppress(
            ConflictError
        ):  # a member already: a sign-in mail, as for a new one
            site.members.create(member, "self")
        request_id, issued = site.sign_ins.request(member.email, site.now())
        _mail(site, tasks, issued)
        return _check_mail(site, request, visitor, request_id)


def _mail(site: Site, tasks: BackgroundTasks, issued: Issued | None) -> None:
    """Send the sign-in mail after the answer (sending takes a while)."""
    if issued is None:
        return

    def send() -> None:
        member = site.members.get(issued.member_id)
        site.mailer.sign_in(member, site.link(issued.link_token), issued.code,
                            site.settings.sign_in_minutes)  # fmt: skip

    tasks.add_task(send)


def _check_mail(
    site: Site, request: Request, visitor: Visitor, request_id: str, *, error: str = "",
    status: int = 200,
) -> Response:  # fmt: skip
    return site.page(request, visitor, "check_mail.html", status, request_id=request_id,
                     error=error, minutes=site.settings.sign_in_minutes)  # fmt: skip


def _link_problem(
    site: Site, request: Request, visitor: Visitor, token: str, outcome: Outcome
) -> Response:
    problem = "expired" if outcome is Outcome.EXPIRED else "used"
    known = outcome is not Outcome.UNKNOWN
    return site.page(request, visitor, "link_problem.html", 410 if known else 404,
                     token=token if known else "", problem=problem)  # fmt: skip
