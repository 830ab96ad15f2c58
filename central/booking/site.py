"""The booking site's shared machinery: services, the signed-in member,
CSRF checks, the language and rendering a page.

Cookies are scoped to ``/booking``: the session (HttpOnly, SameSite=Lax so
the link in a mail arrives signed in, Secure when ``public_url`` is https or
the request came over TLS), a form token for
visitors not signed in (double submit; signed-in forms carry the session's
own token) and the language chosen with the switch. Every page works without
JavaScript.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from central.booking.i18n import CATALOGUES, LANGUAGE_NAMES, Words, pick
from central.booking.mail import Mailer
from central.booking.settings import BookingSection
from central.booking.signin import Session, SignIns
from central.errors import NotFoundError
from central.reservations.bookings import BookingService
from central.reservations.members import Member, MemberService
from central.reservations.places import Places
from central.websec import secure_cookies
from foundation.languages import match

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))
PREFIX = "/booking"
SESSION_COOKIE, FORM_COOKIE, LANG_COOKIE = "booking_session", "booking_form", "booking_lang"


class NotSignedIn(Exception):
    """The page needs a session; the handler sends the visitor to sign in."""


class FormExpired(Exception):
    """A POST without the right CSRF token."""


@dataclass(frozen=True)
class Visitor:
    """Who asks: a member with a session, or nobody yet."""

    session: Session | None
    member: Member | None
    form_token: str
    lang: str

    @property
    def words(self) -> Words:
        return Words(self.lang)


class Site:
    def __init__(
        self, settings: BookingSection, *, places: Places, bookings: BookingService,
        members: MemberService, sign_ins: SignIns, mailer: Mailer, now: Callable[[], datetime],
    ) -> None:  # fmt: skip
        self.settings = settings
        self.places = places
        self.bookings = bookings
        self.members = members
        self.sign_ins = sign_ins
        self.mailer = mailer
        self.now = now

    def visitor(self, request: Request) -> Visitor:
        token = request.cookies.get(SESSION_COOKIE, "")
        session = self.sign_ins.session(token, self.now()) if token else None
        member = None
        if session is not None:
            try:
                member = self.members.get(session.member_id)
            except NotFoundError:
                session = None
        switch = request.query_params.get("lang")
        lang = pick([switch, member.language if member else None, request.cookies.get(LANG_COOKIE)],
                    request.headers.get("accept-language", ""))  # fmt: skip
        if member is not None and switch and match(switch) == lang and member.language != lang:
            # The switch, signed in, is the member's preference (mails follow it).
            member = self.members.update(member.id, {"language": lang}, f"member:{member.id}")
        form_token = session.csrf if session else request.cookies.get(FORM_COOKIE, "")
        return Visitor(session, member, form_token or secrets.token_urlsafe(24), lang)

    def member(self, request: Request) -> tuple[Visitor, Member]:
        visitor = self.visitor(request)
        if visitor.member is None:
            raise NotSignedIn
        return visitor, visitor.member

    def check_form(self, request: Request, visitor: Visitor, token: str) -> None:
        expected = visitor.session.csrf if visitor.session else request.cookies.get(FORM_COOKIE)
        if not expected or not secrets.compare_digest(expected, token):
            log.warning("booking form token mismatch", extra={"path": request.url.path})
            raise FormExpired

    def page(self, request: Request, visitor: Visitor, template: str, status: int = 200,
             **context: Any) -> HTMLResponse:  # fmt: skip
        words = visitor.words
        response = TEMPLATES.TemplateResponse(
            request, template,
            {"_": words, "words": words, "lang": visitor.lang, "visitor": visitor,
             "csrf": visitor.form_token, "prefix": PREFIX,
             "languages": self.language_links(request, visitor),
             "self_registration": self.settings.self_registration,
             "timedelta": timedelta, **context},
            status_code=status,
        )  # fmt: skip
        self.remember(request, visitor, response)
        response.headers["Cache-Control"] = "no-store"  # pages show codes and bookings
        return response

    @staticmethod
    def language_links(request: Request, visitor: Visitor) -> list[tuple[str, str, str]]:
        """(code, name, address) of the switch: this page again in that
        language, or (after a form) the home page."""
        links = []
        for code in CATALOGUES.languages():
            if request.method == "GET":
                url = request.url.include_query_params(lang=code)
                target = f"{url.path}?{url.query}"
            else:
                target = f"{PREFIX}/{'facilities' if visitor.member else 'sign-in'}?lang={code}"
            links.append((code, LANGUAGE_NAMES.get(code, code), target))
        return links

    def secure(self, request: Request) -> bool:
        """Secure cookies when the site's public address is https (TLS may
        end at a proxy in front, so the request itself arrives as http)."""
        return secure_cookies(request, self.settings.public_url)

    def remember(self, request: Request, visitor: Visitor, response: Response) -> None:
        secure = self.secure(request)
        if request.query_params.get("lang") == visitor.lang:
            response.set_cookie(LANG_COOKIE, visitor.lang, max_age=365 * 86400, path=PREFIX,
                                samesite="lax", secure=secure)  # fmt: skip
        if visitor.session is None and request.cookies.get(FORM_COOKIE) != visitor.form_token:
            response.set_cookie(FORM_COOKIE, visitor.form_token, httponly=True, path=PREFIX,
                                samesite="lax", secure=secure)  # fmt: skip

    def signed_in(self, request: Request, token: str, to: str = f"{PREFIX}/") -> Response:
        """Redirect into the site with the new session's cookie."""
        response = RedirectResponse(to, status_code=303)
        max_age = self.settings.session_hours * 3600
        response.set_cookie(SESSION_COOKIE, token, max_age=max_age, path=PREFIX, httponly=True,
                            samesite="lax", secure=self.secure(request))  # fmt: skip
        response.delete_cookie(FORM_COOKIE, path=PREFIX)
        return response

    def link(self, token: str) -> str:
        return f"{self.settings.public_url}{PREFIX}/sign-in/link/{token}"
