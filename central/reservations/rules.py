"""Facility bookings: the model of facilities, rooms and their rules, and the
decisions on them as pure functions (no I/O, no database, no clock: "now" is
always an argument).

Times are timezone-aware. Instants are compared as instants (UTC); opening
hours, "days ahead" and the booking week are local to the facility's time
zone, so a facility abroad or in a zone with summer time works the same way
as one in Asia/Tokyo. Every interval is half-open, ``[start, end)``: a booking
that ends at 10:00 does not overlap one that starts at 10:00.

A booking request either passes every rule (:data:`OK`) or is refused with
the first rule it breaks (:class:`Refusal`), in the order of
:data:`REFUSAL_MESSAGES`. Each refusal has a stable ``code`` for the API and a
plain-words English ``message_id`` (a gettext message id with ``{name}``
placeholders filled from ``values``) for people.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from foundation.config import known_zone

MINUTES_PER_DAY = 24 * 60

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ClosureKind = Literal["maintenance", "holiday", "other"]
BookingStatus = Literal["booked", "cancelled"]
MemberStatus = Literal["active", "suspended"]

# The same shape as a facility or door id on the MQTT wire (contracts.mqtt), so
# a room's door id is one a device can be configured with.
Identifier = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
RecordId = Annotated[str, Field(min_length=1, max_length=64)]
Label = Annotated[str, Field(min_length=1, max_length=200)]

_CLOCK = re.compile(r"^(\d{2}):(\d{2})$")


def _clock_minutes(value: object) -> object:
    """``"HH:MM"`` (``"24:00"`` is the end of the day) as minutes after local
    midnight; anything else is left to the ``int`` validation."""
    if not isinstance(value, str):
        return value
    match = _CLOCK.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a time of day as HH:MM")
    hours, minutes = int(match[1]), int(match[2])
    if minutes >= 60 or hours * 60 + minutes > MINUTES_PER_DAY:
        raise ValueError(f"{value!r} is not between 00:00 and 24:00")
    return hours * 60 + minutes


ClockMinutes = Annotated[int, BeforeValidator(_clock_minutes), Field(ge=0, le=MINUTES_PER_DAY)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpeningWindow(_Frozen):
    """One opening on a day, local time: ``opens`` and ``closes`` as ``"HH:MM"``
    (stored as minutes after midnight; ``"24:00"`` closes at midnight)."""

    opens: ClockMinutes
    closes: ClockMinutes

    @model_validator(mode="after")
    def _opens_before_closing(self) -> Self:
        if self.closes <= self.opens:
            raise ValueError("a window must close after it opens")
        return self


class OpeningHours(_Frozen):
    """Opening windows per weekday in the facility's local time. A weekday that
    is not listed, or has no windows, is closed all day. Several windows on a
    day (a lunch break) must not overlap; a booking fits inside one window."""

    weekly: Mapping[Weekday, tuple[OpeningWindow, ...]] = {}

    @field_validator("weekly")
    @classmethod
    def _sorted_and_apart(
        cls, weekly: Mapping[Weekday, tuple[OpeningWindow, ...]]
    ) -> dict[Weekday, tuple[OpeningWindow, ...]]:
        tidy: dict[Weekday, tuple[OpeningWindow, ...]] = {}
        for day, windows in weekly.items():
            ordered = tuple(sorted(windows, key=lambda w: w.opens))
            for earlier, later in itertools.pairwise(ordered):
                if later.opens < earlier.closes:
                    raise ValueError(f"the windows on {day} overlap")
            tidy[day] = ordered
        return tidy

    @classmethod
    def every_day(cls, opens: str, closes: str) -> OpeningHours:
        window = OpeningWindow.model_validate({"opens": opens, "closes": closes})
        return cls(weekly=dict.fromkeys(WEEKDAYS, (window,)))

    def windows_on(self, day: date) -> tuple[OpeningWindow, ...]:
        return self.weekly.get(WEEKDAYS[day.weekday()], ())


class Closure(_Frozen):
    """The facility (``room_id`` None) or one room closed over ``[starts_at,
    ends_at)``: maintenance, a holiday, or another reason."""

    starts_at: AwareDatetime
    ends_at: AwareDatetime
    kind: ClosureKind
    room_id: Identifier | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.ends_at <= self.starts_at:
            raise ValueError("a closure must end after it starts")
        return self

    @classmethod
    def whole_day(
        cls, day: date, timezone: str, kind: ClosureKind, room_id: str | None = None
    ) -> Closure:
        """A closure of one local calendar day (a holiday, a maintenance day)."""
        zone = ZoneInfo(timezone)
        return cls(
            starts_at=_local_instant(day, 0, zone),
            ends_at=_local_instant(day, MINUTES_PER_DAY, zone),
            kind=kind,
            room_id=room_id,
        )

    def applies_to(self, room_id: str) -> bool:
        return self.room_id is None or self.room_id == room_id


class BookingRules(_Frozen):
    """How a room may be booked. Durations are whole slots; ``None`` limits are
    off. ``max_days_ahead`` counts local calendar days (0: today only);
    cancelling is allowed until ``cancellation_deadline_hours`` before the
    start, inclusive. ``max_hours_per_week`` counts the member's bookings
    starting in the same local Monday-to-Sunday week, past ones included."""

    slot_minutes: int = Field(default=60, ge=5, le=MINUTES_PER_DAY)
    min_duration_minutes: int = Field(default=60, ge=5)
    max_duration_minutes: int = Field(default=120, ge=5)
    max_days_ahead: int = Field(default=30, ge=0, le=366)
    cancellation_deadline_hours: int = Field(default=24, ge=0, le=24 * 90)
    max_active_bookings: int | None = Field(default=None, ge=1)
    max_hours_per_week: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _durations_in_whole_slots(self) -> Self:
        for name in ("min_duration_minutes", "max_duration_minutes"):
            if getattr(self, name) % self.slot_minutes:
                raise ValueError(f"{name} must be a multiple of slot_minutes")
        if self.min_duration_minutes > self.max_duration_minutes:
            raise ValueError("min_duration_minutes must not exceed max_duration_minutes")
        return self


class Facility(_Frozen):
    id: Identifier
    name: Label
    address: str = Field(default="", max_length=300)
    timezone: str = "Asia/Tokyo"
    opening_hours: OpeningHours

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, timezone: str) -> str:
        return known_zone(timezone)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Room(_Frozen):
    """A bookable room; ``door_id`` is the door the devices open for its
    bookings. ``opening_hours`` None: the facility's."""

    id: Identifier
    facility_id: Identifier
    door_id: Identifier
    name: Label
    rules: BookingRules
    fee_per_slot_yen: int = Field(ge=0)
    opening_hours: OpeningHours | None = None


class FacilityContext(_Frozen):
    """What the rules need to know about a facility: its hours and time zone,
    and its current closures (of the whole facility or of single rooms)."""

    facility: Facility
    closures: tuple[Closure, ...] = ()


class MemberState(_Frozen):
    member_id: RecordId
    status: MemberStatus


class _Interval(_Frozen):
    starts_at: AwareDatetime
    ends_at: AwareDatetime

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self

    @property
    def minutes(self) -> float:
        return (self.ends_at - self.starts_at).total_seconds() / 60


class BookingRequest(_Interval):
    room_id: Identifier
    member_id: RecordId


class Booking(_Interval):
    id: RecordId
    room_id: Identifier
    member_id: RecordId
    status: BookingStatus = "booked"


@dataclass(frozen=True)
class Slot:
    """One bookable slot of a room, ``[starts_at, ends_at)`` in UTC."""

    starts_at: datetime
    ends_at: datetime


RefusalCode = Literal[
    "member_suspended",
    "in_the_past",
    "too_far_ahead",
    "too_short",
    "too_long",
    "outside_opening_hours",
    "not_on_slot_boundary",
    "closed",
    "overlap",
    "slot_taken",
    "member_limit_active",
    "member_limit_hours",
    "already_cancelled",
    "cancellation_deadline_passed",
]

# Booking checks run in this order (cancellation codes last); the message is
# the gettext message id shown to a member, in plain words.
REFUSAL_MESSAGES: dict[RefusalCode, str] = {
    "member_suspended": "Your membership is suspended. Please contact the facility.",
    "in_the_past": "That time has already started or passed. Please choose a later time.",
    "too_far_ahead": "Bookings open {max_days_ahead} days ahead. Please choose an earlier day.",
    "too_short": "A booking must be at least {min_minutes} minutes long.",
    "too_long": "A booking can be at most {max_minutes} minutes long.",
    "outside_opening_hours": "The room is not open for the whole of that time.",
    "not_on_slot_boundary": "Bookings start and end on the {slot_minutes}-minute slots shown.",
    "closed": "The room is closed at that time ({kind}).",
    "overlap": "You already have a booking at that time.",
    "slot_taken": "Someone else has booked that time.",
    "member_limit_active": "You can have at most {limit} upcoming bookings.",
    "member_limit_hours": "You can book at most {limit} hours in one week.",
    "already_cancelled": "This booking is already cancelled.",
    "cancellation_deadline_passed": "You can cancel until {hours} hours before the start.",
}  # fmt: skip


@dataclass(frozen=True)
class Refusal:
    code: RefusalCode
    values: Mapping[str, str | int] = field(default_factory=dict, hash=False)

    @property
    def message_id(self) -> str:
        return REFUSAL_MESSAGES[self.code]

    def message(self) -> str:
        """The English message with its values (translations use message_id)."""
        return self.message_id.format(**self.values)


@dataclass(frozen=True)
class Ok:
    """The request passes every rule."""


OK = Ok()


def _local_instant(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """The instant (UTC) of a local wall-clock time ``minutes`` after the start of
    ``day``. Aware arithmetic on one tzinfo is wall-clock arithmetic, so summer
    time shifts land on the right instant; 1440 is the next day's midnight."""
    return (datetime.combine(day, time(0), zone) + timedelta(minutes=minutes)).astimezone(UTC)


def _overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    return a_start < b_end and b_start < a_end


def hours_of(room: Room, facility: Facility) -> OpeningHours:
    return room.opening_hours or facility.opening_hours


def opening_windows(room: Room, facility: Facility, day: date) -> list[tuple[datetime, datetime]]:
    """The room's openings on a local calendar day, as UTC instants."""
    zone = facility.zone
    return [
        (_local_instant(day, w.opens, zone), _local_instant(day, w.closes, zone))
        for w in hours_of(room, facility).windows_on(day)
    ]


def _last_bookable_day(rules: BookingRules, zone: ZoneInfo, now: datetime) -> date:
    return now.astimezone(zone).date() + timedelta(days=rules.max_days_ahead)


def booking_fee(room: Room, starts_at: datetime, ends_at: datetime) -> int:
    """The fee in yen: the fee per slot times the slots started (a part slot
    counts as a whole one; checked bookings are whole slots anyway)."""
    slot_seconds = room.rules.slot_minutes * 60
    seconds = (ends_at - starts_at).total_seconds()
    if seconds <= 0:
        raise ValueError("a booking must end after it starts")
    slots = -(-int(seconds) // slot_seconds)
    return slots * room.fee_per_slot_yen


def _refuse_member(member: MemberState) -> Refusal | None:
    return Refusal("member_suspended") if member.status == "suspended" else None


def _refuse_timing(
    request: BookingRequest, rules: BookingRules, zone: ZoneInfo, now: datetime
) -> Refusal | None:
    if request.starts_at < now:
        return Refusal("in_the_past")
    if request.starts_at.astimezone(zone).date() > _last_bookable_day(rules, zone, now):
        return Refusal("too_far_ahead", {"max_days_ahead": rules.max_days_ahead})
    return None


def _refuse_duration(request: BookingRequest, rules: BookingRules) -> Refusal | None:
    if request.minutes < rules.min_duration_minutes:
        return Refusal("too_short", {"min_minutes": rules.min_duration_minutes})
    if request.minutes > rules.max_duration_minutes:
        return Refusal("too_long", {"max_minutes": rules.max_duration_minutes})
    return None


def _refuse_hours(request: BookingRequest, room: Room, facility: Facility) -> Refusal | None:
    """Inside one opening window of the start's local day, on that window's
    slot grid (slots count from the window's opening)."""
    day = request.starts_at.astimezone(facility.zone).date()
    slot_seconds = room.rules.slot_minutes * 60
    for opens, closes in opening_windows(room, facility, day):
        if opens <= request.starts_at and request.ends_at <= closes:
            offsets = (request.starts_at - opens, request.ends_at - opens)
            if any(offset.total_seconds() % slot_seconds for offset in offsets):
                return Refusal("not_on_slot_boundary", {"slot_minutes": room.rules.slot_minutes})
            return None
    return Refusal("outside_opening_hours")


def _refuse_closure(
    request: BookingRequest, room: Room, closures: Iterable[Closure]
) -> Refusal | None:
    for closure in closures:
        if closure.applies_to(room.id) and _overlaps(
            request.starts_at, request.ends_at, closure.starts_at, closure.ends_at
        ):
            return Refusal("closed", {"kind": closure.kind})
    return None


def _refuse_conflict(
    request: BookingRequest, member_bookings: Iterable[Booking], room_bookings: Iterable[Booking]
) -> Refusal | None:
    def clash(booking: Booking) -> bool:
        return booking.status == "booked" and _overlaps(
            request.starts_at, request.ends_at, booking.starts_at, booking.ends_at
        )

    if any(clash(b) for b in member_bookings):
        return Refusal("overlap")
    if any(clash(b) for b in room_bookings if b.room_id == request.room_id):
        return Refusal("slot_taken")
    return None


def _week_of(moment: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The local Monday-to-Sunday week containing ``moment``, as UTC instants."""
    local_day = moment.astimezone(zone).date()
    monday = local_day - timedelta(days=local_day.weekday())
    return _local_instant(monday, 0, zone), _local_instant(monday + timedelta(days=7), 0, zone)


def _refuse_limits(
    request: BookingRequest,
    rules: BookingRules,
    zone: ZoneInfo,
    member_bookings: Sequence[Booking],
    now: datetime,
) -> Refusal | None:
    booked = [b for b in member_bookings if b.status == "booked"]
    if rules.max_active_bookings is not None:
        # "Active" is not over yet: a booking in progress still counts.
        active = sum(1 for b in booked if b.ends_at > now)
        if active >= rules.max_active_bookings:
            return Refusal("member_limit_active", {"limit": rules.max_active_bookings})
    if rules.max_hours_per_week is not None:
        week_start, week_end = _week_of(request.starts_at, zone)
        minutes = sum(b.minutes for b in booked if week_start <= b.starts_at < week_end)
        if minutes + request.minutes > rules.max_hours_per_week * 60:
            return Refusal("member_limit_hours", {"limit": rules.max_hours_per_week})
    return None


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")


def _require_consistent(
    request: BookingRequest, room: Room, context: FacilityContext, member: MemberState
) -> None:
    """Mismatched arguments are a caller's bug, not a member's mistake."""
    if request.room_id != room.id or room.facility_id != context.facility.id:
        raise ValueError("the request, the room and the facility do not belong together")
    if request.member_id != member.member_id:
        raise ValueError("the request is not the member's")


def _require_members_own(member: MemberState, member_bookings: Sequence[Booking]) -> None:
    if any(b.member_id != member.member_id for b in member_bookings):
        raise ValueError("member_bookings holds another member's booking")


def check_booking(
    request: BookingRequest,
    room: Room,
    context: FacilityContext,
    *,
    member: MemberState,
    member_bookings: Sequence[Booking],
    now: datetime,
    room_bookings: Sequence[Booking] = (),
) -> Ok | Refusal:
    """Whether ``member`` may book ``request`` now: :data:`OK` or the first
    broken rule. ``member_bookings`` are the member's bookings (any status,
    any room the limits should count); ``room_bookings`` other people's
    bookings of the room, when the caller has them (the database must still
    refuse a double booking atomically)."""
    _require_aware(now)
    _require_consistent(request, room, context, member)
    _require_members_own(member, member_bookings)
    rules, zone = room.rules, context.facility.zone
    return (
        _refuse_member(member)
        or _refuse_timing(request, rules, zone, now)
        or _refuse_duration(request, rules)
        or _refuse_hours(request, room, context.facility)
        or _refuse_closure(request, room, context.closures)
        or _refuse_conflict(request, member_bookings, room_bookings)
        or _refuse_limits(request, rules, zone, member_bookings, now)
        or OK
    )


def cancellation_deadline(booking: Booking, rules: BookingRules) -> datetime:
    """The last instant at which the booking may still be cancelled."""
    return booking.starts_at - timedelta(hours=rules.cancellation_deadline_hours)


def check_cancellation(booking: Booking, rules: BookingRules, now: datetime) -> Ok | Refusal:
    """Whether the member may cancel ``booking`` now (a cancelled one cannot be
    cancelled again; after the deadline the booking stands)."""
    _require_aware(now)
    if booking.status == "cancelled":
        return Refusal("already_cancelled")
    if now > cancellation_deadline(booking, rules):
        return Refusal("cancellation_deadline_passed", {"hours": rules.cancellation_deadline_hours})
    return OK


def free_slots(
    room: Room,
    context: FacilityContext,
    day: date,
    room_bookings: Iterable[Booking],
    now: datetime,
) -> list[Slot]:
    """The slots of ``room`` on the local calendar ``day`` that can still be
    booked: within opening hours, not started, not closed, not booked, and not
    beyond ``max_days_ahead``. A booking is a run of consecutive free slots
    whose length is within the rules' minimum and maximum."""
    _require_aware(now)
    if room.facility_id != context.facility.id:
        raise ValueError("the room is not in this facility")
    if day > _last_bookable_day(room.rules, context.facility.zone, now):
        return []
    busy = [
        (b.starts_at, b.ends_at)
        for b in room_bookings
        if b.status == "booked" and b.room_id == room.id
    ]
    busy += [(c.starts_at, c.ends_at) for c in context.closures if c.applies_to(room.id)]
    step = timedelta(minutes=room.rules.slot_minutes)
    slots: list[Slot] = []
    for opens, closes in opening_windows(room, context.facility, day):
        start = opens
        while start + step <= closes:
            end = start + step
            if start >= now and not any(_overlaps(start, end, b, e) for b, e in busy):
                slots.append(Slot(start, end))
            start = end
    return slots
