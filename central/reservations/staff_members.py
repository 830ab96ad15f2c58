"""Staff pages about members (look-up, status, bookings, cards with revoke,
enrolment codes, the revocation window), the audit trail and the use
figures. Mounted into the dashboard like :mod:`.staff_views`."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from central.errors import ConflictError, NotFoundError
from central.reservations import staff_read, usage
from central.reservations.staff_site import StaffServices, StaffSite, Text, actor, refused_page

log = logging.getLogger(__name__)
MAX_USE_DAYS = 366


def add_member_pages(app: FastAPI, site: StaffSite, services: StaffServices) -> None:
    _member_routes(app, site, services)
    _card_routes(app, site, services)
    _audit_and_use(app, site, services)


def _member_routes(app: FastAPI, site: StaffSite, s: StaffServices) -> None:
    @app.get("/members", response_class=HTMLResponse, include_in_schema=False)
    def members_page(request: Request, q: str = "") -> Response:
        session = site.require(request)
        return site.page(request, "staff/members.html", session, q=q,
                         found=s.members.search(q) if q else [])  # fmt: skip

    @app.get("/members/{member_id}", response_class=HTMLResponse, include_in_schema=False)
    def member_page(request: Request, member_id: str) -> Response:
        session = site.require(request)
        try:
            member = s.members.get(member_id)
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        db = s.bookings.db
        return site.page(
            request, "staff/member.html", session, member=member,
            bookings=s.bookings.member_bookings(member_id, upcoming=False)[-50:],
            cards=s.members.cards(member_id),
            revocations=staff_read.revocations(db, member_id, site.now()),
        )  # fmt: skip

    @app.post("/members/{member_id}/status", include_in_schema=False)
    def set_status(request: Request, member_id: str, csrf: Text, status: Text) -> Response:
        session = site.require(request, "operator")
        site.check_csrf(session, csrf)
        if status not in ("active", "suspended"):
            raise HTTPException(422, "status must be active or suspended")
        s.members.set_status(member_id, "active" if status == "active" else "suspended",
                             actor(session))  # fmt: skip
        return RedirectResponse(f"/members/{member_id}", status_code=303)


def _card_routes(app: FastAPI, site: StaffSite, s: StaffServices) -> None:
    @app.post("/members/{member_id}/cards/{card_id}/revoke", include_in_schema=False)
    def revoke(request: Request, member_id: str, card_id: str, csrf: Text) -> Response:
        session = site.require(request, "operator")
        site.check_csrf(session, csrf)
        try:
            s.members.revoke_card(member_id, card_id, actor(session))
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        log.info("card revoked by staff", extra={"user": session.username, "card": card_id})
        return RedirectResponse(f"/members/{member_id}#revocations", status_code=303)

    @app.post("/members/{member_id}/enrolment-code", include_in_schema=False)
    def issue_code(request: Request, member_id: str, csrf: Text) -> Response:
        session = site.require(request, "operator")
        site.check_csrf(session, csrf)
        back = f"/members/{member_id}"
        try:
            issued = s.members.issue_code(member_id, actor(session), site.now())
        except (ConflictError, NotFoundError) as exc:
            return refused_page(site, request, session, exc, back)
        # Shown this once: only its keyed hash is stored.
        return site.page(request, "staff/enrolment_code.html", session, issued=issued,
                         member=s.members.get(member_id), back=back)  # fmt: skip


def _audit_and_use(app: FastAPI, site: StaffSite, s: StaffServices) -> None:
    @app.get("/audit", response_class=HTMLResponse, include_in_schema=False)
    def audit_page(request: Request, facility: str = "", member: str = "",
                   booking: str = "") -> Response:  # fmt: skip
        session = site.require(request)
        entries = staff_read.audit_trail(
            s.bookings.db, facility=facility.strip(), member=member.strip(),
            booking=booking.strip(),
        )  # fmt: skip
        return site.page(request, "staff/audit.html", session, entries=entries,
                         facility=facility, member=member, booking=booking)  # fmt: skip

    @app.get("/use", response_class=HTMLResponse, include_in_schema=False)
    def use_page(request: Request, facility: str = "", start: date | None = None,
                 end: date | None = None, period: str = "day") -> Response:  # fmt: skip
        session = site.require(request)
        facilities = s.places.facilities()
        facility = facility or (facilities[0].id if facilities else "")
        today = site.now().date()
        start, end = use_range(start or today - timedelta(days=6), end or today)
        per: Literal["day", "week"] = "week" if period == "week" else "day"
        rows = []
        if facility:
            rows = usage.use_figures(s.bookings.db, facility, start, end, grace=s.grace,
                                     now=site.now(), period=per)  # fmt: skip
        return site.page(request, "staff/use.html", session, rows=rows, facility=facility,
                         facilities=facilities, start=start, end=end, period=per,
                         total=usage.totals(rows))  # fmt: skip


def use_range(start: date, end: date) -> tuple[date, date]:
    """At most a year, in order (a typo must not scan a decade)."""
    if end < start:
        start, end = end, start
    return max(start, end - timedelta(days=MAX_USE_DAYS - 1)), end
