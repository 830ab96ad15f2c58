"""The booking confirmation's .ics file (central/reservations/ics.py), parsed
back with icalendar and read line by line as RFC 5545 says."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Calendar, Event

from central.reservations.ics import PRODID, booking_ics, booking_uid
from central.reservations.rules import Booking, BookingRules, Facility, OpeningHours, Room

JST = ZoneInfo("Asia/Tokyo")
FACILITY = Facility(
    id="kita-sports",
    name="北区立総合スポーツセンター",
    address="東京都北区王子本町1-2-3; 2F, 受付",
    opening_hours=OpeningHours.every_day("09:00", "21:00"),
)
ROOM = Room(
    id="hall-a",
    facility_id="kita-sports",
    door_id="door-hall-a",
    name="第1体育室（バスケットボール・バレーボール兼用コート）北側半面",
    rules=BookingRules(),
    fee_per_slot_yen=1200,
)
BOOKING = Booking(
    id="b-20260406-0001",
    room_id="hall-a",
    member_id="m-1",
    starts_at=datetime(2026, 4, 6, 10, 0, tzinfo=JST),
    ends_at=datetime(2026, 4, 6, 12, 0, tzinfo=JST),
)
STAMP = datetime(2026, 4, 1, 9, 30, 15, tzinfo=JST)
NOTE = (
    "受付で会員カードを提示してください。\n"
    "駐車場は 2 時間まで無料, 超過分は有料; 詳細は窓口\\案内所へ"
)


def make(booking: Booking = BOOKING, **overrides: object) -> bytes:
    arguments: dict[str, object] = {
        "reservation_code": "K7Q-2M9X",
        "stamp": STAMP,
        "uid_domain": "kiosk.city.example.jp",
        "code_label": "予約コード",
        "note": NOTE,
        "language": "ja",
    }
    arguments.update(overrides)
    return booking_ics(booking, ROOM, FACILITY, **arguments)  # type: ignore[arg-type]


def the_event(ics: bytes) -> Event:
    calendar = Calendar.from_ical(ics)
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, Event)
    return event


def unfolded(ics: bytes) -> list[str]:
    """Content lines as RFC 5545 3.1 unfolds them (CRLF then one space)."""
    return ics.decode("utf-8").replace("\r\n ", "").split("\r\n")


def test_ics_has_every_field_of_the_booking() -> None:
    ics = make()
    calendar = Calendar.from_ical(ics)
    assert str(calendar["PRODID"]) == PRODID
    assert str(calendar["VERSION"]) == "2.0"
    assert str(calendar["METHOD"]) == "PUBLISH"
    event = the_event(ics)
    assert str(event["UID"]) == "booking-b-20260406-0001@kiosk.city.example.jp"
    assert event.decoded("DTSTAMP") == datetime(2026, 4, 1, 0, 30, 15, tzinfo=UTC)
    assert event.decoded("DTSTART") == datetime(2026, 4, 6, 1, 0, tzinfo=UTC)
    assert event.decoded("DTEND") == datetime(2026, 4, 6, 3, 0, tzinfo=UTC)
    assert str(event["SUMMARY"]) == f"{ROOM.name} ({FACILITY.name})"
    assert str(event["LOCATION"]) == f"{FACILITY.name}, {FACILITY.address}"
    assert str(event["DESCRIPTION"]) == f"予約コード: K7Q-2M9X\n{NOTE}"
    assert str(event["STATUS"]) == "CONFIRMED"
    assert event.decoded("SEQUENCE") == 0
    assert event["SUMMARY"].params["LANGUAGE"] == "ja"


def test_ics_times_are_written_in_utc() -> None:
    lines = unfolded(make())
    assert "DTSTART:20260406T010000Z" in lines
    assert "DTEND:20260406T030000Z" in lines
    assert "DTSTAMP:20260401T003015Z" in lines
    assert not any(line.startswith("BEGIN:VTIMEZONE") for line in lines)


def test_ics_lines_end_in_crlf_and_fold_at_75_octets() -> None:
    ics = make()
    assert ics.endswith(b"\r\n")
    assert b"\n" not in ics.replace(b"\r\n", b"")
    physical = ics.split(b"\r\n")[:-1]
    assert max(len(line) for line in physical) <= 75
    for line in physical:
        line.decode("utf-8")  # a fold never splits a character
    summary = next(line for line in unfolded(ics) if line.startswith("SUMMARY"))
    assert len(summary.encode()) > 150  # the long Japanese summary was folded


def test_ics_escapes_text_values() -> None:
    lines = unfolded(make())
    location = next(line for line in lines if line.startswith("LOCATION"))
    assert location == (
        "LOCATION;LANGUAGE=ja:北区立総合スポーツセンター\\, 東京都北区王子本町1-2-3\\; 2F\\, 受付"
    )
    description = next(line for line in lines if line.startswith("DESCRIPTION"))
    assert "\\n駐車場" in description
    assert "無料\\, 超過分は有料\\; 詳細は窓口\\\\案内所へ" in description


def test_ics_without_address_or_language() -> None:
    facility = FACILITY.model_copy(update={"address": ""})
    ics = booking_ics(
        BOOKING, ROOM, facility, reservation_code="ABC", stamp=STAMP, uid_domain="example.jp"
    )
    event = the_event(ics)
    assert str(event["LOCATION"]) == FACILITY.name
    assert str(event["DESCRIPTION"]) == "Reservation code: ABC"
    assert "LANGUAGE" not in event["SUMMARY"].params


def test_ics_of_a_cancelled_booking_keeps_the_uid() -> None:
    cancelled = BOOKING.model_copy(update={"status": "cancelled"})
    event = the_event(make(cancelled, sequence=1))
    assert str(event["STATUS"]) == "CANCELLED"
    assert event.decoded("SEQUENCE") == 1
    assert str(event["UID"]) == str(the_event(make())["UID"])


def test_ics_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        make(stamp=datetime(2026, 4, 1, 9, 30))
    with pytest.raises(ValueError, match="host name"):
        make(uid_domain="Kiosk Example")
    with pytest.raises(ValueError, match="reservation code"):
        make(reservation_code=" ")
    with pytest.raises(ValueError, match="language tag"):
        make(language="日本語")
    with pytest.raises(ValueError, match="negative"):
        make(sequence=-1)
    elsewhere = BOOKING.model_copy(update={"room_id": "hall-b"})
    with pytest.raises(ValueError, match="belong together"):
        make(elsewhere)


def test_ics_uid_is_stable_per_booking() -> None:
    assert booking_uid(BOOKING, "example.jp") == "booking-b-20260406-0001@example.jp"


TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"))
    | st.sampled_from(",;\\\n"),
    min_size=1,
    max_size=120,
)


@settings(max_examples=100, deadline=None)
@given(name=TEXT, note=TEXT)
def test_ics_round_trips_any_text(name: str, note: str) -> None:
    room = ROOM.model_copy(update={"name": name})
    ics = booking_ics(
        BOOKING, room, FACILITY, reservation_code="K7Q", stamp=STAMP,
        uid_domain="example.jp", note=note,
    )  # fmt: skip
    assert max(len(line) for line in ics.split(b"\r\n")) <= 75
    event = the_event(ics)
    assert str(event["SUMMARY"]) == f"{name} ({FACILITY.name})"
    assert str(event["DESCRIPTION"]) == f"Reservation code: K7Q\n{note}"
