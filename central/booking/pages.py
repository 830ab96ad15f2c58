"""The signed-in pages: facilities, a facility's rooms on a day, a room's
free slots, booking a slot, the confirmation (the reservation code shown
once), my bookings with cancelling, my cards with an enrolment code.

A refusal of the services (:class:`BookingRefused`) is shown on the page in
the member's words with status 409, never as an error page.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import RedirectResponse, Response

from central.booking.i18n import Words
from central.booking.mail import BookingFacts, calendar_file
from central.booking.site import PREFIX, Site, Visitor
from central.errors import BookingRefused, ConflictError, NotFoundError
from central.reservations.booking_rows import BookingView, refused
from central.reservations.members import Member
from central.reservations.rules import (
    Facility,
    Refusal,
    Room,
    Slot,
    cancellation_deadline,
    check_cancellation,
)

log = logging.getLogger(__name__)
FormStr = Annotated[str, Form()]
DAYS_LISTED = 14  # day links on a facility's page (the date field reaches further)


@dataclass(frozen=True)
class Shown:
    """One booking as the pages list it."""

    booking: BookingView
    room: Room
    facility: Facility
    when: str
    deadline: str
    can_cancel: bool


def add_page_routes(router: APIRouter, site: Site) -> None:
    _browse_routes(router, site)
    _book_routes(router, site)
    _mine_routes(router, site)


def _day(value: str, fallback: date) -> date:
    try:
        return date.fromisoformat(value) if value else fallback
    except ValueError:
        return fallback


def _today(site: Site, facility: Facility) -> date:
    return site.now().astimezone(facility.zone).date()


def _browse_routes(router: APIRouter, site: Site) -> None:
    @router.get("/")
    def home(request: Request) -> Response:
        site.member(request)
        return RedirectResponse(f"{PREFIX}/facilities", status_code=303)

    @router.get("/facilities")
    def facilities(request: Request) -> Response:
        visitor, _member = site.member(request)
        return site.page(request, visitor, "facilities.html", facilities=site.places.facilities())

    @router.get("/facilities/{facility_id}")
    def facility(request: Request, facility_id: str, day: str = "") -> Response:
        visitor, _member = site.member(request)
        found = site.places.facility(facility_id)
        today = _today(site, found)
        chosen = _day(day, today)
        days = [today + timedelta(days=n) for n in range(DAYS_LISTED)]
        return site.page(request, visitor, "facility.html", facility=found, day=chosen,
                         today=today, days=days, rooms=site.places.rooms(facility_id))  # fmt: skip

    @router.get("/rooms/{room_id}")
    def room(request: Request, room_id: str, day: str = "") -> Response:
        visitor, _member = site.member(request)
        found = site.places.room(room_id)
        place = site.places.facility(found.facility_id)
        today = _today(site, place)
        chosen = max(_day(day, today), today)
        slots = site.bookings.availability(room_id, chosen)
        return site.page(request, visitor, "room.html", room=found, facility=place, day=chosen,
                         today=today, slots=slots, zone=place.zone,
                         prev_day=chosen - timedelta(days=1),
                         next_day=chosen + timedelta(days=1))  # fmt: skip


def durations(room: Room, slots: list[Slot], start: datetime) -> list[int]:
    """Minutes that can be booked from ``start``: runs of consecutive free
    slots within the room's minimum and maximum duration."""
    free = {s.starts_at: s.ends_at for s in slots}
    found, end = [], start
    while end in free:
        end = free[end]
        minutes = int((end - start).total_seconds() // 60)
        if minutes > room.rules.max_duration_minutes:
            break
        if minutes >= room.rules.min_duration_minutes:
            found.append(minutes)
    return found


def _book_routes(router: APIRouter, site: Site) -> None:
    @router.get("/rooms/{room_id}/book")
    def book_form(request: Request, room_id: str, start: str) -> Response:
        visitor, _member = site.member(request)
        found = site.places.room(room_id)
        place = site.places.facility(found.facility_id)
        try:
            starts_at = datetime.fromisoformat(start)
            choices = durations(found, site.bookings.availability(
                room_id, starts_at.astimezone(place.zone).date()), starts_at)  # fmt: skip
        except (ValueError, TypeError):
            return _refused(site, request, visitor, refused("bad_time"), found)
        if not choices:
            return _refused(site, request, visitor, refused("slot_taken"), found)
        return site.page(request, visitor, "book.html", room=found, facility=place,
                         start=starts_at, choices=choices, zone=place.zone)  # fmt: skip

    @router.post("/rooms/{room_id}/book")
    def book(
        request: Request, tasks: BackgroundTasks, room_id: str, *, start: FormStr,
        minutes: Annotated[int, Form()], csrf: FormStr = "",
    ) -> Response:  # fmt: skip
        visitor, member = site.member(request)
        site.check_form(request, visitor, csrf)
        found = site.places.room(room_id)
        try:
            starts_at = datetime.fromisoformat(start)
            new = site.bookings.create(room_id, starts_at, starts_at + timedelta(minutes=minutes),
                                       member_id=member.id, actor=f"member:{member.id}",
                                       source="site")  # fmt: skip
        except (ValueError, TypeError, OverflowError):
            return _refused(site, request, visitor, refused("bad_time"), found)
        except BookingRefused as exc:
            return _refused(site, request, visitor, exc, found)
        log.info("booking made on the site", extra={"booking": new.booking.id})
        facts = BookingFacts(new.booking, found, site.places.facility(found.facility_id))
        tasks.add_task(site.mailer.confirmation, member, facts, new.code, site.now())
        ics = calendar_file(facts, visitor.words, code=new.code,
                            uid_domain=site.mailer.uid_domain, stamp=site.now())  # fmt: skip
        shown = _shown(site, visitor.words, facts)
        return site.page(request, visitor, "confirmed.html", shown=shown, code=new.code,
                         ics=base64.b64encode(ics).decode())  # fmt: skip


def _refused(
    site: Site, request: Request, visitor: Visitor, exc: BookingRefused, room: Room
) -> Response:
    log.info("booking refused on the site", extra={"code": exc.code, "room": room.id})
    return site.page(request, visitor, "refused.html", 409, room=room,
                     message=visitor.words.refusal(exc))  # fmt: skip


def _shown(site: Site, words: Words, facts: BookingFacts) -> Shown:
    booking, zone = facts.booking, facts.facility.zone
    rule_booking = booking.as_rule_booking()
    verdict = check_cancellation(rule_booking, facts.room.rules, site.now())
    return Shown(
        booking, facts.room, facts.facility, words.when(booking.starts_at, booking.ends_at, zone),
        words.moment(cancellation_deadline(rule_booking, facts.room.rules), zone),
        not isinstance(verdict, Refusal),
    )  # fmt: skip


def _mine(site: Site, words: Words, member: Member) -> tuple[list[Shown], list[Shown]]:
    rooms: dict[str, tuple[Room, Facility]] = {}
    upcoming: list[Shown] = []
    past: list[Shown] = []
    now = site.now()
    for booking in reversed(site.bookings.member_bookings(member.id, upcoming=False)):
        if booking.room not in rooms:
            room = site.places.room(booking.room)
            rooms[booking.room] = (room, site.places.facility(room.facility_id))
        shown = _shown(site, words, BookingFacts(booking, *rooms[booking.room]))
        if booking.status == "booked" and booking.ends_at > now:
            upcoming.insert(0, shown)  # soonest first
        else:
            past.append(shown)  # latest first
    return upcoming, past


def _mine_routes(router: APIRouter, site: Site) -> None:
    @router.get("/my")
    def my_bookings(request: Request, done: str = "") -> Response:
        visitor, member = site.member(request)
        upcoming, past = _mine(site, visitor.words, member)
        notice = visitor.words("Your booking is cancelled.") if done == "cancelled" else ""
        return site.page(request, visitor, "my.html", upcoming=upcoming, past=past,
                         notice=notice, error="")  # fmt: skip

    @router.post("/my/{booking_id}/cancel")
    def cancel(
        request: Request, tasks: BackgroundTasks, booking_id: str, csrf: FormStr = ""
    ) -> Response:
        visitor, member = site.member(request)
        site.check_form(request, visitor, csrf)
        if site.bookings.get(booking_id).member_id != member.id:
            raise NotFoundError("not this member's booking")
        try:
            done = site.bookings.cancel(booking_id, actor=f"member:{member.id}")
        except BookingRefused as exc:
            upcoming, past = _mine(site, visitor.words, member)
            return site.page(request, visitor, "my.html", 409, upcoming=upcoming, past=past,
                             notice="", error=visitor.words.refusal(exc))  # fmt: skip
        room = site.places.room(done.room)
        facts = BookingFacts(done, room, site.places.facility(room.facility_id))
        tasks.add_task(site.mailer.cancellation, member, facts, site.now())
        return RedirectResponse(f"{PREFIX}/my?done=cancelled", status_code=303)

    @router.get("/cards")
    def cards(request: Request) -> Response:
        visitor, member = site.member(request)
        active = [c for c in site.members.cards(member.id) if c.status == "active"]
        return site.page(request, visitor, "cards.html", cards=active, issued=None, error="")

    @router.post("/cards/code")
    def enrolment_code(request: Request, csrf: FormStr = "") -> Response:
        visitor, member = site.member(request)
        site.check_form(request, visitor, csrf)
        active = [c for c in site.members.cards(member.id) if c.status == "active"]
        try:
            issued = site.members.issue_code(member.id, f"member:{member.id}", site.now())
        except ConflictError:
            error = visitor.words.refusal(refused("member_not_active"))
            return site.page(request, visitor, "cards.html", 409, cards=active, issued=None,
                             error=error)  # fmt: skip
        log.info("enrolment code issued on the site", extra={"member": member.id})
        expires = visitor.words.moment(issued.expires_at, _member_zone(site))
        return site.page(request, visitor, "cards.html", cards=active, issued=issued, error="",
                         expires=expires)  # fmt: skip


def _member_zone(site: Site) -> ZoneInfo:
    """The zone enrolment-code expiries are shown in: the first facility's
    (a city's facilities share one), else Japan's."""
    places = site.places.facilities()
    return places[0].zone if places else ZoneInfo("Asia/Tokyo")
