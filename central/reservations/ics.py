"""The iCalendar (RFC 5545) file sent with a booking confirmation: one
VEVENT in a VCALENDAR, built with the ``icalendar`` library, which writes CRLF
line endings, folds lines at 75 octets without splitting a UTF-8 character
and escapes ``,`` ``;`` ``\\`` and newlines in text values.

Pure: the caller passes the stamp time and the words of the description in
the member's language; nothing here reads a clock or a catalogue.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from icalendar import Calendar, Event

from central.reservations.rules import Booking, Facility, Room

PRODID = "-//city-kiosk//facility bookings//EN"
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$")


def _utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware")
    return moment.astimezone(UTC)


def booking_uid(booking: Booking, uid_domain: str) -> str:
    """A UID that stays the same for every file about one booking, so a
    calendar replaces the event (a cancellation) instead of adding one."""
    if not _HOSTNAME.match(uid_domain):
        raise ValueError(f"{uid_domain!r} is not a lower-case host name")
    return f"booking-{booking.id}@{uid_domain}"


def booking_summary(room: Room, facility: Facility) -> str:
    return f"{room.name} ({facility.name})"


def booking_location(facility: Facility) -> str:
    return f"{facility.name}, {facility.address}" if facility.address else facility.name


def booking_ics(
    booking: Booking,
    room: Room,
    facility: Facility,
    *,
    reservation_code: str,
    stamp: datetime,
    uid_domain: str,
    code_label: str = "Reservation code",
    note: str = "",
    language: str | None = None,
    sequence: int = 0,
) -> bytes:
    """The ``.ics`` file of ``booking``: UTF-8 bytes with CRLF line endings.

    ``stamp`` is when the file is made (DTSTAMP); ``code_label`` and ``note``
    are the words of the description in the member's ``language`` (also
    given as the LANGUAGE of the text properties). A cancelled booking gives
    STATUS:CANCELLED; raise ``sequence`` with every change of one booking.
    """
    if booking.room_id != room.id or room.facility_id != facility.id:
        raise ValueError("the booking, the room and the facility do not belong together")
    if not reservation_code.strip():
        raise ValueError("a reservation code is required")
    if language is not None and not _LANGUAGE.match(language):
        raise ValueError(f"{language!r} is not a language tag")
    if sequence < 0:
        raise ValueError("sequence must not be negative")
    text_parameters = {"LANGUAGE": language} if language else {}
    description = f"{code_label}: {reservation_code}"
    if note:
        description = f"{description}\n{note}"

    event = Event()
    event.add("uid", booking_uid(booking, uid_domain))
    event.add("dtstamp", _utc(stamp, "stamp"))
    event.add("dtstart", _utc(booking.starts_at, "starts_at"))
    event.add("dtend", _utc(booking.ends_at, "ends_at"))
    event.add("summary", booking_summary(room, facility), parameters=text_parameters)
    event.add("location", booking_location(facility), parameters=text_parameters)
    event.add("description", description, parameters=text_parameters)
    event.add("status", "CANCELLED" if booking.status == "cancelled" else "CONFIRMED")
    event.add("sequence", sequence)
    event.add("transp", "OPAQUE")

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add_component(event)
    ical: bytes = calendar.to_ical()
    return ical
