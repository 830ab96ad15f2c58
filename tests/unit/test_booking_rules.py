"""Booking rules of facilities and rooms (central/reservations/rules.py)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, get_args
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from central.reservations.rules import (
    OK,
    REFUSAL_MESSAGES,
    Booking,
    BookingRequest,
    BookingRules,
    Closure,
    Facility,
    FacilityContext,
    MemberState,
    Ok,
    OpeningHours,
    OpeningWindow,
    Refusal,
    RefusalCode,
    Room,
    Slot,
    booking_fee,
    cancellation_deadline,
    check_booking,
    check_cancellation,
    free_slots,
)

JST = ZoneInfo("Asia/Tokyo")
MONDAY = date(2026, 4, 6)
WEEKDAY_HOURS = {"opens": "09:00", "closes": "21:00"}
HOURS = OpeningHours.model_validate(
    {
        "weekly": {
            **{day: [WEEKDAY_HOURS] for day in ("mon", "tue", "wed", "thu", "fri")},
            "sat": [{"opens": "13:00", "closes": "17:00"}, {"opens": "09:00", "closes": "12:00"}],
        }
    }
)  # Sunday closed; Saturday with a lunch break (windows given out of order on purpose)
FACILITY = Facility(id="kita-sports", name="北区スポーツセンター", opening_hours=HOURS)
RULES = BookingRules(
    slot_minutes=60,
    min_duration_minutes=60,
    max_duration_minutes=180,
    max_days_ahead=14,
    cancellation_deadline_hours=24,
    max_active_bookings=3,
    max_hours_per_week=6,
)
ROOM = Room(
    id="hall-a",
    facility_id="kita-sports",
    door_id="door-hall-a",
    name="第1体育室",
    rules=RULES,
    fee_per_slot_yen=1200,
)
CONTEXT = FacilityContext(facility=FACILITY)
MEMBER = MemberState(member_id="m-1", status="active")
NOW = datetime(2026, 4, 6, 8, 0, tzinfo=JST)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=JST)


def request(start: datetime, end: datetime, room: str = "hall-a") -> BookingRequest:
    return BookingRequest(room_id=room, member_id="m-1", starts_at=start, ends_at=end)


def booking(
    start: datetime,
    end: datetime,
    *,
    room: str = "hall-a",
    member: str = "m-1",
    status: str = "booked",
    ident: str = "b-1",
) -> Booking:
    return Booking.model_validate(
        {"id": ident, "room_id": room, "member_id": member, "starts_at": start,
         "ends_at": end, "status": status}
    )  # fmt: skip


def check(
    req: BookingRequest,
    *,
    room: Room = ROOM,
    context: FacilityContext = CONTEXT,
    member: MemberState = MEMBER,
    mine: Sequence[Booking] = (),
    others: Sequence[Booking] = (),
    now: datetime = NOW,
) -> Ok | Refusal:
    return check_booking(
        req, room, context, member=member, member_bookings=mine, now=now, room_bookings=others
    )


def code(result: Ok | Refusal) -> str:
    return result.code if isinstance(result, Refusal) else "ok"


# One case per refusal code: the request and what else breaks the rule.
MAINTENANCE = Closure(starts_at=at(MONDAY, 12), ends_at=at(MONDAY, 15), kind="maintenance")
REFUSAL_CASES: dict[str, dict[str, Any]] = {
    "member_suspended": {
        "req": request(at(MONDAY, 10), at(MONDAY, 11)),
        "member": MemberState(member_id="m-1", status="suspended"),
    },
    "in_the_past": {"req": request(at(MONDAY, 7), at(MONDAY, 9))},
    "too_far_ahead": {
        "req": request(at(MONDAY + timedelta(days=15), 10), at(MONDAY + timedelta(days=15), 11))
    },
    "too_short": {"req": request(at(MONDAY, 10), at(MONDAY, 10, 30))},
    "too_long": {"req": request(at(MONDAY, 10), at(MONDAY, 14))},
    "outside_opening_hours": {"req": request(at(MONDAY, 20), at(MONDAY, 22))},
    "not_on_slot_boundary": {"req": request(at(MONDAY, 10, 30), at(MONDAY, 11, 30))},
    "closed": {
        "req": request(at(MONDAY, 14), at(MONDAY, 16)),
        "context": FacilityContext(facility=FACILITY, closures=(MAINTENANCE,)),
    },
    "overlap": {
        "req": request(at(MONDAY, 10), at(MONDAY, 12)),
        "mine": [booking(at(MONDAY, 11), at(MONDAY, 12), room="hall-b")],
    },
    "slot_taken": {
        "req": request(at(MONDAY, 10), at(MONDAY, 12)),
        "others": [booking(at(MONDAY, 11), at(MONDAY, 12), member="m-2")],
    },
    "member_limit_active": {
        "req": request(at(MONDAY, 10), at(MONDAY, 11)),
        "mine": [
            booking(at(MONDAY + timedelta(days=d), 10), at(MONDAY + timedelta(days=d), 11))
            for d in (1, 2, 3)
        ],
    },
    "member_limit_hours": {
        "req": request(at(MONDAY, 10), at(MONDAY, 11)),
        "mine": [
            booking(at(MONDAY + timedelta(days=d), 9), at(MONDAY + timedelta(days=d), 12))
            for d in (1, 2)
        ],
    },
}
CANCELLATION_CODES = {"already_cancelled", "cancellation_deadline_passed"}


@pytest.mark.parametrize("expected", sorted(REFUSAL_CASES))
def test_rules_refuse_with_each_booking_code(expected: str) -> None:
    case = dict(REFUSAL_CASES[expected])
    result = check(case.pop("req"), **case)
    assert code(result) == expected


def test_rules_every_refusal_code_has_a_case_and_a_message() -> None:
    codes = set(get_args(RefusalCode))
    assert set(REFUSAL_CASES) | CANCELLATION_CODES == codes
    assert set(REFUSAL_MESSAGES) == codes


def test_rules_messages_are_filled_from_the_refusal_values() -> None:
    for name, case in REFUSAL_CASES.items():
        arguments = dict(case)
        refusal = check(arguments.pop("req"), **arguments)
        assert isinstance(refusal, Refusal)
        text = refusal.message()
        assert "{" not in text and text.endswith("."), name
        assert refusal.message_id == REFUSAL_MESSAGES[refusal.code]
    too_long = check(REFUSAL_CASES["too_long"]["req"])
    assert isinstance(too_long, Refusal)
    assert too_long.message() == "A booking can be at most 180 minutes long."


def test_rules_accept_a_booking_inside_opening_hours() -> None:
    assert check(request(at(MONDAY, 10), at(MONDAY, 12))) is OK


def test_rules_booking_ending_exactly_at_closing_time_is_fine() -> None:
    assert check(request(at(MONDAY, 18), at(MONDAY, 21))) is OK
    assert code(check(request(at(MONDAY, 19), at(MONDAY, 22)))) == "outside_opening_hours"


def test_rules_booking_starting_at_opening_and_now_is_fine() -> None:
    assert check(request(at(MONDAY, 9), at(MONDAY, 10)), now=at(MONDAY, 9)) is OK
    assert code(check(request(at(MONDAY, 9), at(MONDAY, 10)), now=at(MONDAY, 9, 1))) == (
        "in_the_past"
    )


def test_rules_refuse_before_opening_and_on_a_closed_weekday() -> None:
    sunday = MONDAY + timedelta(days=6)
    assert code(check(request(at(MONDAY, 8), at(MONDAY, 9)), now=at(MONDAY, 7))) == (
        "outside_opening_hours"
    )
    assert code(check(request(at(sunday, 10), at(sunday, 11)))) == "outside_opening_hours"


def test_rules_a_booking_fits_inside_one_window_of_the_day() -> None:
    saturday = MONDAY + timedelta(days=5)
    assert check(request(at(saturday, 9), at(saturday, 12))) is OK
    assert check(request(at(saturday, 13), at(saturday, 14))) is OK
    assert code(check(request(at(saturday, 11), at(saturday, 14)))) == "outside_opening_hours"
    assert code(check(request(at(saturday, 12), at(saturday, 13)))) == "outside_opening_hours"


def test_rules_slots_count_from_the_window_opening() -> None:
    hours = OpeningHours.every_day("09:30", "21:00")
    room = ROOM.model_copy(update={"opening_hours": hours})
    assert check(request(at(MONDAY, 9, 30), at(MONDAY, 10, 30)), room=room) is OK
    assert code(check(request(at(MONDAY, 10), at(MONDAY, 11)), room=room)) == (
        "not_on_slot_boundary"
    )


def test_rules_refuse_an_end_off_the_slot_grid() -> None:
    assert code(check(request(at(MONDAY, 10), at(MONDAY, 11, 30)))) == "not_on_slot_boundary"


def test_rules_duration_limits_are_inclusive() -> None:
    assert check(request(at(MONDAY, 10), at(MONDAY, 11))) is OK
    assert check(request(at(MONDAY, 10), at(MONDAY, 13))) is OK


def test_rules_days_ahead_count_local_calendar_days() -> None:
    late_evening = at(MONDAY, 23, 30)  # 14:30 UTC: still Monday in Tokyo
    last = MONDAY + timedelta(days=14)
    assert check(request(at(last, 20), at(last, 21)), now=late_evening) is OK
    after = last + timedelta(days=1)
    refused = check(request(at(after, 9), at(after, 10)), now=late_evening)
    assert code(refused) == "too_far_ahead"
    assert isinstance(refused, Refusal) and refused.values == {"max_days_ahead": 14}


def test_rules_closure_edges_are_half_open() -> None:
    context = FacilityContext(facility=FACILITY, closures=(MAINTENANCE,))  # 12:00-15:00
    assert check(request(at(MONDAY, 15), at(MONDAY, 17)), context=context) is OK
    assert check(request(at(MONDAY, 10), at(MONDAY, 12)), context=context) is OK
    assert code(check(request(at(MONDAY, 11), at(MONDAY, 13)), context=context)) == "closed"


def test_rules_a_room_closure_closes_only_that_room() -> None:
    closure = MAINTENANCE.model_copy(update={"room_id": "hall-b"})
    context = FacilityContext(facility=FACILITY, closures=(closure,))
    assert check(request(at(MONDAY, 12), at(MONDAY, 13)), context=context) is OK
    closure = MAINTENANCE.model_copy(update={"room_id": "hall-a"})
    context = FacilityContext(facility=FACILITY, closures=(closure,))
    assert code(check(request(at(MONDAY, 12), at(MONDAY, 13)), context=context)) == "closed"


def test_rules_a_holiday_closes_the_whole_local_day() -> None:
    tuesday = MONDAY + timedelta(days=1)
    holiday = Closure.whole_day(tuesday, "Asia/Tokyo", "holiday")
    assert holiday.starts_at == datetime(2026, 4, 6, 15, 0, tzinfo=UTC)
    assert holiday.ends_at == datetime(2026, 4, 7, 15, 0, tzinfo=UTC)
    context = FacilityContext(facility=FACILITY, closures=(holiday,))
    refused = check(request(at(tuesday, 20), at(tuesday, 21)), context=context)
    assert isinstance(refused, Refusal) and refused.values == {"kind": "holiday"}
    assert check(request(at(MONDAY, 20), at(MONDAY, 21)), context=context) is OK


def test_rules_overlapping_own_booking_by_one_minute_is_refused() -> None:
    req = request(at(MONDAY, 10), at(MONDAY, 11))
    one_minute = booking(at(MONDAY, 9), at(MONDAY, 10, 1), room="hall-b")
    touching = booking(at(MONDAY, 9), at(MONDAY, 10), room="hall-b")
    after = booking(at(MONDAY, 11), at(MONDAY, 12), room="hall-b")
    assert code(check(req, mine=[one_minute])) == "overlap"
    assert check(req, mine=[touching, after]) is OK


def test_rules_cancelled_bookings_block_nothing() -> None:
    req = request(at(MONDAY, 10), at(MONDAY, 11))
    mine = booking(at(MONDAY, 10), at(MONDAY, 11), status="cancelled")
    theirs = booking(at(MONDAY, 10), at(MONDAY, 11), member="m-2", status="cancelled")
    assert check(req, mine=[mine] * 5, others=[theirs]) is OK


def test_rules_bookings_of_other_rooms_do_not_take_the_slot() -> None:
    req = request(at(MONDAY, 10), at(MONDAY, 11))
    elsewhere = booking(at(MONDAY, 10), at(MONDAY, 11), member="m-2", room="hall-b")
    assert check(req, others=[elsewhere]) is OK


def test_rules_active_limit_counts_bookings_not_over_yet() -> None:
    req = request(at(MONDAY, 18), at(MONDAY, 19))
    now = at(MONDAY, 12)
    over = booking(at(MONDAY, 10), at(MONDAY, 11))
    in_progress = booking(at(MONDAY, 11), at(MONDAY, 13))
    upcoming = [booking(at(MONDAY + timedelta(days=d), 9), at(MONDAY + timedelta(days=d), 10))
                for d in (7, 8)]  # fmt: skip
    assert check(req, mine=[over, *upcoming], now=now) is OK
    refused = check(req, mine=[over, in_progress, *upcoming], now=now)
    assert isinstance(refused, Refusal) and refused == Refusal("member_limit_active", {"limit": 3})


def test_rules_weekly_hours_limit_is_inclusive() -> None:
    tuesday = MONDAY + timedelta(days=1)
    four_hours = [
        booking(at(tuesday, 9), at(tuesday, 12)),
        booking(at(tuesday, 13), at(tuesday, 14)),
    ]
    assert check(request(at(MONDAY, 10), at(MONDAY, 12)), mine=four_hours) is OK
    refused = check(request(at(MONDAY, 10), at(MONDAY, 13)), mine=four_hours)
    assert code(refused) == "member_limit_hours"


def test_rules_weekly_hours_count_the_local_week_including_past_bookings() -> None:
    now = at(MONDAY + timedelta(days=3), 8)  # Thursday
    monday_past = booking(at(MONDAY, 9), at(MONDAY, 12))
    last_sunday_night = booking(
        at(MONDAY - timedelta(days=1), 21), at(MONDAY - timedelta(days=1), 23)
    )
    friday = MONDAY + timedelta(days=4)
    req = request(at(friday, 9), at(friday, 12))
    assert check(req, mine=[last_sunday_night, monday_past], now=now) is OK
    tuesday_past = booking(at(MONDAY + timedelta(days=1), 9), at(MONDAY + timedelta(days=1), 10))
    assert code(check(req, mine=[monday_past, tuesday_past], now=now)) == "member_limit_hours"


def test_rules_without_limits_allow_many_bookings() -> None:
    rules = RULES.model_copy(update={"max_active_bookings": None, "max_hours_per_week": None})
    room = ROOM.model_copy(update={"rules": rules})
    mine = [booking(at(MONDAY + timedelta(days=d), 9), at(MONDAY + timedelta(days=d), 12))
            for d in range(1, 6)]  # fmt: skip
    assert check(request(at(MONDAY, 10), at(MONDAY, 13)), room=room, mine=mine) is OK


def test_rules_a_suspended_member_hears_that_first() -> None:
    suspended = MemberState(member_id="m-1", status="suspended")
    assert code(check(request(at(MONDAY, 7), at(MONDAY, 8)), member=suspended)) == (
        "member_suspended"
    )


def test_rules_refuse_mismatched_arguments() -> None:
    req = request(at(MONDAY, 10), at(MONDAY, 11))
    with pytest.raises(ValueError, match="belong together"):
        check(request(at(MONDAY, 10), at(MONDAY, 11), room="hall-b"))
    with pytest.raises(ValueError, match="not the member"):
        check(req, member=MemberState(member_id="m-2", status="active"))
    with pytest.raises(ValueError, match="another member"):
        check(req, mine=[booking(at(MONDAY, 12), at(MONDAY, 13), member="m-2")])
    with pytest.raises(ValueError, match="timezone-aware"):
        check(req, now=datetime(2026, 4, 6, 8, 0))
    other = Facility(id="minami-pool", name="南プール", opening_hours=HOURS)
    with pytest.raises(ValueError, match="belong together"):
        check(req, context=FacilityContext(facility=other))


def test_rules_refuse_naive_or_reversed_times_in_the_model() -> None:
    with pytest.raises(ValidationError):
        request(datetime(2026, 4, 6, 10), datetime(2026, 4, 6, 11))
    with pytest.raises(ValidationError, match="after"):
        request(at(MONDAY, 11), at(MONDAY, 10))
    with pytest.raises(ValidationError, match="after"):
        Closure(starts_at=at(MONDAY, 11), ends_at=at(MONDAY, 11), kind="other")


def test_rules_opening_windows_validate_their_times() -> None:
    assert OpeningWindow.model_validate({"opens": "00:00", "closes": "24:00"}).closes == 1440
    for opens, closes in (("21:00", "09:00"), ("09:00", "24:30"), ("9:00", "10:00"),
                          ("09:60", "10:00"), ("10:00", "10:00")):  # fmt: skip
        with pytest.raises(ValidationError):
            OpeningWindow.model_validate({"opens": opens, "closes": closes})
    with pytest.raises(ValidationError, match="overlap"):
        OpeningHours.model_validate(
            {"weekly": {"mon": [{"opens": "09:00", "closes": "12:00"},
                                {"opens": "11:00", "closes": "13:00"}]}}
        )  # fmt: skip


def test_rules_a_room_open_until_midnight_takes_the_last_slot() -> None:
    room = ROOM.model_copy(update={"opening_hours": OpeningHours.every_day("09:00", "24:00")})
    assert check(request(at(MONDAY, 22), at(MONDAY, 23) + timedelta(hours=1)), room=room) is OK


def test_rules_booking_rules_use_whole_slots() -> None:
    with pytest.raises(ValidationError, match="multiple"):
        BookingRules(slot_minutes=30, min_duration_minutes=45, max_duration_minutes=90)
    with pytest.raises(ValidationError, match="exceed"):
        BookingRules(slot_minutes=30, min_duration_minutes=120, max_duration_minutes=60)


def test_rules_facility_time_zone_must_exist() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        Facility(id="x", name="x", timezone="Asia/Nowhere", opening_hours=HOURS)


def test_rules_identifiers_match_the_mqtt_contract() -> None:
    from contracts.mqtt import Reservation

    wire = Reservation.model_json_schema()["properties"]["door"]["pattern"]
    ours = Room.model_json_schema()["properties"]["door_id"]["pattern"]
    assert wire == ours
    with pytest.raises(ValidationError):
        ROOM.model_validate({**ROOM.model_dump(), "door_id": "Door A"})


def test_rules_fee_is_per_slot() -> None:
    assert booking_fee(ROOM, at(MONDAY, 10), at(MONDAY, 13)) == 3600
    assert booking_fee(ROOM, at(MONDAY, 10), at(MONDAY, 10, 1)) == 1200
    free = ROOM.model_copy(update={"fee_per_slot_yen": 0})
    assert booking_fee(free, at(MONDAY, 10), at(MONDAY, 12)) == 0
    with pytest.raises(ValueError, match="after"):
        booking_fee(ROOM, at(MONDAY, 10), at(MONDAY, 10))


def test_cancellation_allowed_until_the_deadline_inclusive() -> None:
    tuesday = MONDAY + timedelta(days=1)
    held = booking(at(tuesday, 10), at(tuesday, 11))
    assert cancellation_deadline(held, RULES) == at(MONDAY, 10)
    assert check_cancellation(held, RULES, at(MONDAY, 10)) is OK
    refused = check_cancellation(held, RULES, at(MONDAY, 10) + timedelta(seconds=1))
    assert refused == Refusal("cancellation_deadline_passed", {"hours": 24})


def test_cancellation_refused_when_already_cancelled() -> None:
    held = booking(at(MONDAY, 10), at(MONDAY, 11), status="cancelled")
    assert code(check_cancellation(held, RULES, NOW - timedelta(days=3))) == "already_cancelled"


def test_cancellation_without_deadline_until_the_start() -> None:
    rules = RULES.model_copy(update={"cancellation_deadline_hours": 0})
    held = booking(at(MONDAY, 10), at(MONDAY, 11))
    assert check_cancellation(held, rules, at(MONDAY, 10)) is OK
    assert code(check_cancellation(held, rules, at(MONDAY, 10, 1))) == (
        "cancellation_deadline_passed"
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        check_cancellation(held, rules, datetime(2026, 4, 6))


def hours_of(slots: list[Slot]) -> list[int]:
    return [s.starts_at.astimezone(JST).hour for s in slots]


def test_free_slots_cover_the_opening_hours_in_utc() -> None:
    slots = free_slots(ROOM, CONTEXT, MONDAY, [], NOW)
    assert hours_of(slots) == list(range(9, 21))
    assert slots[0] == Slot(
        datetime(2026, 4, 6, 0, 0, tzinfo=UTC), datetime(2026, 4, 6, 1, 0, tzinfo=UTC)
    )
    assert all(s.starts_at.tzinfo is UTC for s in slots)


def test_free_slots_exclude_past_booked_and_closed_slots() -> None:
    context = FacilityContext(facility=FACILITY, closures=(MAINTENANCE,))  # 12:00-15:00
    taken = [
        booking(at(MONDAY, 16), at(MONDAY, 17, 30), member="m-2"),
        booking(at(MONDAY, 19), at(MONDAY, 20), status="cancelled"),
        booking(at(MONDAY, 20), at(MONDAY, 21), room="hall-b"),
    ]
    slots = free_slots(ROOM, context, MONDAY, taken, at(MONDAY, 10, 30))
    assert hours_of(slots) == [11, 15, 18, 19, 20]


def test_free_slots_include_the_slot_starting_now() -> None:
    assert hours_of(free_slots(ROOM, CONTEXT, MONDAY, [], at(MONDAY, 20)))[0] == 20
    assert (
        hours_of(free_slots(ROOM, CONTEXT, MONDAY, [], at(MONDAY, 20, 0) + timedelta(seconds=1)))
        == []
    )


def test_free_slots_follow_windows_and_closed_days() -> None:
    saturday, sunday = MONDAY + timedelta(days=5), MONDAY + timedelta(days=6)
    assert hours_of(free_slots(ROOM, CONTEXT, saturday, [], NOW)) == [9, 10, 11, 13, 14, 15, 16]
    assert free_slots(ROOM, CONTEXT, sunday, [], NOW) == []


def test_free_slots_stop_at_the_last_bookable_day() -> None:
    assert free_slots(ROOM, CONTEXT, MONDAY + timedelta(days=14), [], NOW)
    assert free_slots(ROOM, CONTEXT, MONDAY + timedelta(days=15), [], NOW) == []
    assert free_slots(ROOM, CONTEXT, MONDAY - timedelta(days=1), [], NOW) == []


def test_free_slots_refuse_mismatched_arguments() -> None:
    other = FacilityContext(facility=FACILITY.model_copy(update={"id": "minami-pool"}))
    with pytest.raises(ValueError, match="not in this facility"):
        free_slots(ROOM, other, MONDAY, [], NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        free_slots(ROOM, CONTEXT, MONDAY, [], datetime(2026, 4, 6))


def test_free_slots_follow_summer_time_in_other_zones() -> None:
    berlin = Facility(id="partner", name="Partner", timezone="Europe/Berlin",
                      opening_hours=OpeningHours.every_day("01:00", "05:00"))  # fmt: skip
    room = ROOM.model_copy(update={"facility_id": "partner", "opening_hours": None})
    spring = date(2026, 3, 29)  # 02:00 local jumps to 03:00
    slots = free_slots(
        room, FacilityContext(facility=berlin), spring, [], datetime(2026, 3, 20, tzinfo=UTC)
    )
    # 01:00 CET is 00:00 UTC; 05:00 CEST is 03:00 UTC: three real hours.
    assert [s.starts_at.hour for s in slots] == [0, 1, 2]
    assert slots[-1].ends_at == datetime(2026, 3, 29, 3, 0, tzinfo=UTC)


# Properties over random days, rules, bookings, closures and "now".
BASE = at(MONDAY, 0)


@st.composite
def intervals(draw: st.DrawFn) -> tuple[datetime, datetime]:
    start = BASE + timedelta(minutes=draw(st.integers(0, 20 * 1440)))
    return start, start + timedelta(minutes=draw(st.integers(1, 600)))


@st.composite
def scenarios(
    draw: st.DrawFn, min_equals_slot: bool
) -> tuple[Room, FacilityContext, date, list[Booking], datetime]:
    slot = draw(st.sampled_from([15, 30, 60, 90]))
    minimum = slot if min_equals_slot else slot * draw(st.integers(1, 3))
    rules = BookingRules(
        slot_minutes=slot, min_duration_minutes=minimum,
        max_duration_minutes=minimum + slot * draw(st.integers(0, 4)),
        max_days_ahead=draw(st.integers(0, 20)), cancellation_deadline_hours=24,
    )  # fmt: skip
    room = ROOM.model_copy(update={"rules": rules})
    closures = tuple(
        Closure(
            starts_at=s,
            ends_at=e,
            kind="maintenance",
            room_id=draw(st.sampled_from([None, "hall-a", "hall-b"])),
        )
        for s, e in draw(st.lists(intervals(), max_size=3))
    )
    taken = [
        booking(
            s,
            e,
            member="m-2",
            ident=f"b-{i}",
            room=draw(st.sampled_from(["hall-a", "hall-b"])),
            status=draw(st.sampled_from(["booked", "cancelled"])),
        )
        for i, (s, e) in enumerate(draw(st.lists(intervals(), max_size=8)))
    ]
    day = MONDAY + timedelta(days=draw(st.integers(0, 20)))
    # Now on a quarter hour half the time, so it often falls on a slot start.
    now_minutes = draw(
        st.one_of(st.integers(0, 20 * 1440), st.integers(0, 20 * 96).map(lambda q: q * 15))
    )
    now = BASE + timedelta(minutes=now_minutes)
    return room, FacilityContext(facility=FACILITY, closures=closures), day, taken, now


@settings(max_examples=150, deadline=None)
@given(scenarios(min_equals_slot=True))
def test_free_slots_are_bookable_by_a_member_without_bookings(scenario: Any) -> None:
    room, context, day, taken, now = scenario
    for slot in free_slots(room, context, day, taken, now):
        req = request(slot.starts_at, slot.ends_at)
        assert check(req, room=room, context=context, others=taken, now=now) is OK


@settings(max_examples=150, deadline=None)
@given(scenarios(min_equals_slot=True))
def test_free_slots_list_every_single_slot_that_check_booking_accepts(scenario: Any) -> None:
    room, context, day, taken, now = scenario
    offered = set(free_slots(room, context, day, taken, now))
    length = timedelta(minutes=room.rules.slot_minutes)
    for quarter in range(24 * 4):  # every slot size and opening is on the quarter hour
        start = at(day, 0) + timedelta(minutes=15 * quarter)
        req = request(start, start + length)
        accepted = check(req, room=room, context=context, others=taken, now=now) is OK
        assert accepted == (
            Slot(req.starts_at.astimezone(UTC), req.ends_at.astimezone(UTC)) in offered
        )


@settings(max_examples=150, deadline=None)
@given(scenarios(min_equals_slot=False))
def test_free_slots_never_overlap_bookings_closures_or_each_other(scenario: Any) -> None:
    room, context, day, taken, now = scenario
    slots = free_slots(room, context, day, taken, now)
    busy = [
        (b.starts_at, b.ends_at) for b in taken if b.status == "booked" and b.room_id == room.id
    ]
    busy += [(c.starts_at, c.ends_at) for c in context.closures if c.applies_to(room.id)]
    for slot in slots:
        assert slot.starts_at >= now
        assert slot.ends_at - slot.starts_at == timedelta(minutes=room.rules.slot_minutes)
        assert slot.starts_at.astimezone(JST).date() == day
        assert not any(slot.starts_at < e and s < slot.ends_at for s, e in busy)
    assert all(a.ends_at <= b.starts_at for a, b in itertools.pairwise(slots))


@settings(max_examples=150, deadline=None)
@given(scenarios(min_equals_slot=False), st.data())
def test_runs_of_free_slots_within_the_duration_limits_are_bookable(
    scenario: Any, data: st.DataObject
) -> None:
    room, context, day, taken, now = scenario
    slots = free_slots(room, context, day, taken, now)
    rules = room.rules
    if not slots:
        return
    first = data.draw(st.integers(0, len(slots) - 1))
    length = data.draw(st.integers(rules.min_duration_minutes, rules.max_duration_minutes))
    length -= length % rules.slot_minutes
    run = slots[first : first + length // rules.slot_minutes]
    contiguous = all(a.ends_at == b.starts_at for a, b in itertools.pairwise(run))
    if len(run) * rules.slot_minutes == length and contiguous:
        req = request(run[0].starts_at, run[-1].ends_at)
        assert check(req, room=room, context=context, others=taken, now=now) is OK


def test_rules_refusal_codes_are_snake_case_words() -> None:
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", c) for c in get_args(RefusalCode))


def test_rules_every_refusal_code_is_documented() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "booking.md").read_text("utf-8")
    assert [c for c in get_args(RefusalCode) if f"| `{c}` |" not in docs] == []
