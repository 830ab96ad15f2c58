"""Staff reservation pages of the ops dashboard: the day and week grid of a
facility, bookings for members and walk-ins, move, cancel, closures.

They live with the reservation services (not in ``central.ops``, which must
not import them) and are mounted into the dashboard through the small
:class:`StaffSite` protocol the dashboard fulfils: sign-in, roles, CSRF,
language and the page layout stay the dashboard's. Server-rendered forms,
no JavaScript. ``viewer`` reads; ``operator`` changes. Every change goes
through the services (published to the devices, audited as ``staff:<name>``).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from typing import Annotated

from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from central.errors import BookingRefused, ConflictError, NotFoundError
from central.reservations import staff_read
from central.reservations.rules import Closure
from central.reservations.staff_site import (
    StaffServices,
    StaffSite,
    Text,
    actor,
    local_time,
    refused_page,
)

log = logging.getLogger(__name__)
OptText = Text


def add_staff_pages(app: FastAPI, site: StaffSite, services: StaffServices) -> None:
    """Mount the grid, booking and closure pages (members: :mod:`.staff_members`)."""
    _grid_routes(app, site, services)
    _booking_routes(app, site, services)
    _closure_routes(app, site, services)


def _grid_routes(app: FastAPI, site: StaffSite, s: StaffServices) -> None:
    @app.get("/bookings", response_class=HTMLResponse, include_in_schema=False)
    def facilities_page(request: Request) -> Response:
        session = site.require(request)
        return site.page(request, "staff/facilities.html", session,
                         facilities=s.places.facilities())  # fmt: skip

    @app.get("/facilities/{facility_id}", response_class=HTMLResponse, include_in_schema=False)
    def grid_page(request: Request, facility_id: str, day: date | None = None,
                  view: str = "day") -> Response:  # fmt: skip
        session = site.require(request)
        try:
            facility = s.places.facility(facility_id)
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        today = site.now().astimezone(facility.zone).date()
        day = day or today
        week = view == "week"
        first = day - timedelta(days=day.weekday()) if week else day
        step = timedelta(days=7 if week else 1)
        version = staff_read.facility_version(s.bookings.db, facility_id)
        return site.page(
            request, "staff/grid.html", session, facility=facility, view="week" if week else "day",
            grid=staff_read.grid(s.bookings.db, facility_id, first, 7 if week else 1),
            day=day, prev=first - step, next=first + step, today=today, version=version,
            behind=staff_read.devices_behind(s.bookings.db, facility_id, version, site.now()),
            now=site.now(),
        )  # fmt: skip


def _booking_routes(app: FastAPI, site: StaffSite, s: StaffServices) -> None:
    @app.post("/facilities/{facility_id}/bookings", include_in_schema=False)
    def create_booking(
        request: Request, facility_id: str, *, csrf: Text, room: Text,
        day: Annotated[date, Form()],
        start: Text, end: Text, member: OptText = "", walk_in: OptText = "",
    ) -> Response:  # fmt: skip
        session = site.require(request, "operator")
        site.check_csrf(session, csrf)
        back = f"/facilities/{facility_id}?day={day}"
        zone = s.places.facility(facility_id).zone
        member_id = None
        if not walk_in:
            found = s.members.search(member, limit=2)
            if len(found) != 1:
                _ = site.gettext(request)
                text = _("No member found.") if not found else _("Several members match.")
                return refused_page(site, request, session, ConflictError(text), back)
            member_id = found[0].id
        try:
            new = s.bookings.create(room, local_time(day, start, zone), local_time(day, end, zone),
                                    member_id=member_id, actor=actor(session))  # fmt: skip
        except (BookingRefused, NotFoundError) as exc:
            return refused_page(site, request, session, exc, back)
        log.info("staff booking", extra={"user": session.username, "booking": new.booking.id})
        if member_id is not None:
            return RedirectResponse(back, status_code=303)
        # A walk-in has no card: the code is the key, shown this once (not stored).
        return site.page(request, "staff/walk_in.html", session, booking=new.booking,
                         reservation_code=new.code, zone=zone, back=back)  # fmt: skip

    @app.get("/bookings/{booking_id}", response_class=HTMLResponse, include_in_schema=False)
    def booking_page(request: Request, booking_id: str) -> Response:
        session = site.require(request)
        try:
            booking = s.bookings.get(booking_id)
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        member = s.members.get(booking.member_id) if booking.member_id else None
        zone = s.places.facility(booking.facility).zone
        return site.page(
            request, "staff/booking.html", session, booking=booking, member=member, zone=zone,
            rooms=s.places.rooms(booking.facility),
            audit=staff_read.audit_trail(s.bookings.db, booking=booking_id, limit=50),
        )  # fmt: skip

    @app.post("/bookings/{booking_id}/move", include_in_schema=False)
    def move_booking(request: Request, booking_id: str, *, csrf: Text, room: Text,
                     day: Annotated[date, Form()], start: Text, end: Text) -> Response:  # fmt: skip
        session = site.require(request, "operator")
        site.check_csrf(session, csrf)
        back = f"/bookings/{booking_id}"
        try:
            zone = s.places.facility(s.bookings.get(booking_id).facility).zone
            s.bookings.move(booking_id, local_time(day, start, zone), local_time(day, end, zone),
                            actor=actor(session), room_id=room)  # fmt: skip
        except (BookingRefused, NotFoundError) as exc:
            return refused_page(site, request, session, exc, back)
        return RedirectResponse(back, status_code=303)

    @app.post("/bookings/{booking_id}/cancel", include_in_schema=False)
    def cancel_booking(request: Request, booking_id: str, csrf: Text, reason: OptText = "",
                       override: OptText = "") -> Response:  # fmt: skip
        session = site.require(request, "operator")
        site.check_csrf(session, csrf)
        back = f"/bookings/{booking_id}"
        reason = " ".join(reason.split())[:200]
        if override and not reason:
            _ = site.gettext(request)
            text = _("Give a reason to cancel after the deadline.")
            return refused_page(site, request, session, ConflictError(text), back)
        try:
            s.bookings.cancel(booking_id, actor=actor(session), enforce_deadline=not override,
                              reason=reason)  # fmt: skip
        except (BookingRefused, NotFoundError) as exc:
            return refused_page(site, request, session, exc, back)
        return RedirectResponse(back, status_code=303)


def _closure_routes(app: FastAPI, site: StaffSite, s: StaffServices) -> None:
    @app.post("/facilities/{facility_id}/closures", include_in_schema=False)
    def add_closure(
        request: Request, facility_id: str, *, csrf: Text, kind: Text,
        first: Annotated[date, Form()], last: Annotated[date, Form()], room: OptText = "",
        start: OptText = "", end: OptText = "",
    ) -> Response:  # fmt: skip
        session = site.require(request, "operator")
        site.check_csrf(session, csrf)
        back = f"/facilities/{facility_id}?day={first}"
        try:
            zone = s.places.facility(facility_id).zone
            starts = local_time(first, start or "00:00", zone)
            ends = (local_time(last, end, zone) if end
                    else datetime.combine(last + timedelta(days=1), time(), zone))  # fmt: skip
            closure = Closure.model_validate(
                {"starts_at": starts, "ends_at": ends, "kind": kind, "room_id": room or None}
            )
            s.places.add_closure(facility_id, closure, actor(session))
        except (ValidationError, ConflictError, NotFoundError) as exc:
            text = str(exc).splitlines()[-1] if isinstance(exc, ValidationError) else str(exc)
            return refused_page(site, request, session, ConflictError(text), back)
        return RedirectResponse(back, status_code=303)

    @app.post("/closures/{closure_id}/delete", include_in_schema=False)
    def remove_closure(
        request: Request, closure_id: str, csrf: Text, back: OptText = ""
    ) -> Response:
        session = site.require(request, "operator")
        site.check_csrf(session, csrf)
        try:
            s.places.remove_closure(closure_id, actor(session))
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        target = back if back.startswith("/facilities/") else "/bookings"
        return RedirectResponse(target, status_code=303)
