"""What the staff reservation pages share: the :class:`StaffSite` protocol
the ops dashboard fulfils (sign-in, roles, CSRF, language, page layout stay
the dashboard's), the services they call, and small form helpers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Protocol

from fastapi import Form, HTTPException, Request
from fastapi.responses import HTMLResponse

from central.errors import BookingRefused
from central.ops.staff import StaffSession
from central.reservations.bookings import BookingService
from central.reservations.members import MemberService
from central.reservations.places import Places

log = logging.getLogger(__name__)
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
Text = Annotated[str, Form()]


class StaffSite(Protocol):
    """What the dashboard offers pages mounted into it."""

    def page(self, request: Request, template: str, session: StaffSession | None,
             code: int = 200, **context: Any) -> HTMLResponse: ...  # fmt: skip
    def require(self, request: Request, role: str = "viewer") -> StaffSession: ...
    def check_csrf(self, session: StaffSession, token: str) -> None: ...
    def gettext(self, request: Request) -> Callable[[str], str]: ...
    def now(self) -> datetime: ...


@dataclass(frozen=True)
class StaffServices:
    bookings: BookingService
    members: MemberService
    places: Places
    grace: timedelta  # start + this: a later first check-in is late


def actor(session: StaffSession) -> str:
    return f"staff:{session.username}"


def local_time(day: date, hhmm: str, zone: Any) -> datetime:
    try:
        return datetime.combine(day, time.fromisoformat(hhmm), zone)
    except ValueError:
        raise HTTPException(422, f"not a time: {hhmm!r}") from None


def refused_page(site: StaffSite, request: Request, session: StaffSession, exc: Exception,
                 back: str) -> HTMLResponse:  # fmt: skip
    message = exc.message if isinstance(exc, BookingRefused) else str(exc)
    code = exc.code if isinstance(exc, BookingRefused) else "conflict"
    log.info("staff change refused", extra={"user": session.username, "code": code})
    return site.page(request, "staff/refused.html", session, 409, message=message, refusal=code,
                     back=back)  # fmt: skip
