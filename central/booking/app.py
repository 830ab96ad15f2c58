"""Mounting the booking site on central's API app under ``/booking/``."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from central.booking.auth import add_auth_routes
from central.booking.i18n import SITE_MESSAGES
from central.booking.mail import Mailer
from central.booking.pages import add_page_routes
from central.booking.settings import BookingSection
from central.booking.signin import Policy, SignIns
from central.booking.site import HERE, PREFIX, FormExpired, NotSignedIn, Site
from central.db.engine import Database
from central.errors import NotFoundError
from central.reservations.bookings import BookingService
from central.reservations.members import MemberService
from central.reservations.places import Places
from central.smtp import SmtpServer

# The sign-in codes' HMAC key is the fleet code key asked for this scope.
SIGN_IN_KEY_SCOPE = "booking-sign-in"


def add_booking_site(
    app: FastAPI, settings: BookingSection, *, db: Database, bookings: BookingService,
    members: MemberService, code_key: Callable[[str], bytes], now: Callable[[], datetime],
    smtp: SmtpServer | None = None,
) -> Site:  # fmt: skip
    """Mount the site; ``smtp`` overrides ``settings.smtp`` (tests)."""
    if settings.smtp is None and smtp is None:
        raise ValueError("the booking site needs an SMTP server")
    server = smtp or settings.smtp.server()  # type: ignore[union-attr]
    sender = settings.smtp.sender if settings.smtp else "booking@localhost"
    policy = Policy(settings.sign_in_minutes, settings.code_attempts, settings.mails_per_hour,
                    settings.session_hours)  # fmt: skip
    site = Site(
        settings, places=Places(db), bookings=bookings, members=members,
        sign_ins=SignIns(db, code_key(SIGN_IN_KEY_SCOPE), policy),
        mailer=Mailer(server, sender, settings.uid_domain()), now=now,
    )  # fmt: skip
    router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=_page_route(site))
    add_auth_routes(router, site)
    add_page_routes(router, site)
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="booking-static")
    _handlers(app, site)
    return site


def _page_route(site: Site) -> type[APIRoute]:
    """Routes whose missing objects are a page in the member's words (the
    API's handler answers JSON)."""

    class PageRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def handle(request: Request) -> Response:
                try:
                    return await handler(request)
                except NotFoundError:
                    visitor = site.visitor(request)
                    message = visitor.words(SITE_MESSAGES["not_found"])
                    return site.page(request, visitor, "problem.html", 404, message=message)

            return handle

    return PageRoute


def _handlers(app: FastAPI, site: Site) -> None:
    @app.exception_handler(NotSignedIn)
    async def _sign_in(_request: Request, _exc: NotSignedIn) -> Response:
        return RedirectResponse(f"{PREFIX}/sign-in", status_code=303)

    @app.exception_handler(FormExpired)
    async def _expired(request: Request, _exc: FormExpired) -> Response:
        visitor = site.visitor(request)
        return site.page(request, visitor, "problem.html", 403,
                         message=visitor.words(SITE_MESSAGES["form_expired"]))  # fmt: skip
