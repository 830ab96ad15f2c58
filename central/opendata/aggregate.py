"""The monthly figures, pure: plain facts in (read by :mod:`.source`),
one unsuppressed row per room, kind or device out. Opaque member and
resident references come in only to count distinct people for the
suppression rule (:mod:`.suppress`); they never reach a row.

Definitions (docs/opendata.md):

* **bookings**: booked (not cancelled) bookings starting in the month;
* **checked in**: those with at least one granted check-in
  (``checkin.granted`` naming the booking's reservation);
* **no-shows**: those with none (the month is over, so none is pending);
* **hours booked / used**: the length of the bookings, of those checked in;
* **certificates**: copies of each kind in orders printed in the month;
* **device availability**: the share of the month's hours in which the
  device sent at least one health report, counted from the month's start
  or, for a device first heard of later in the month, from that hour.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class BookingFact:
    facility: str
    room: str
    member: str | None  # opaque; None: a walk-in
    starts: datetime
    ends: datetime
    checked_in: bool


@dataclass(frozen=True)
class RoomUse:
    facility: str
    room: str
    bookings: int
    checked_in: int
    no_shows: int
    hours_booked: float
    hours_used: float
    contributors: int  # distinct members; walk-ins count as one


@dataclass(frozen=True)
class IssuedItem:
    kind: str
    copies: int
    resident: str  # opaque registry reference


@dataclass(frozen=True)
class KindCount:
    kind: str
    copies: int
    contributors: int  # distinct residents


@dataclass(frozen=True)
class DeviceAvailability:
    facility: str
    device: str
    hours_in_period: int
    hours_reporting: int

    @property
    def percent(self) -> float:
        if self.hours_in_period == 0:
            return 0.0
        return round(100 * self.hours_reporting / self.hours_in_period, 1)


def _hours(span: timedelta) -> float:
    return round(span.total_seconds() / 3600, 2)


def room_use(facts: Iterable[BookingFact], rooms: Sequence[tuple[str, str]]) -> list[RoomUse]:
    """One row per (facility, room) of ``rooms`` (rooms without bookings
    get zeros) and of any room a booking names."""
    by_room: dict[tuple[str, str], list[BookingFact]] = {key: [] for key in rooms}
    for fact in facts:
        by_room.setdefault((fact.facility, fact.room), []).append(fact)
    rows = []
    for (facility, room), found in sorted(by_room.items()):
        came = [f for f in found if f.checked_in]
        people = {f.member for f in found}  # None (walk-ins) is one entry
        rows.append(
            RoomUse(
                facility=facility,
                room=room,
                bookings=len(found),
                checked_in=len(came),
                no_shows=len(found) - len(came),
                hours_booked=_hours(sum((f.ends - f.starts for f in found), timedelta())),
                hours_used=_hours(sum((f.ends - f.starts for f in came), timedelta())),
                contributors=len(people),
            )
        )
    return rows


def certificates(items: Iterable[IssuedItem]) -> list[KindCount]:
    copies: dict[str, int] = defaultdict(int)
    people: dict[str, set[str]] = defaultdict(set)
    for item in items:
        copies[item.kind] += item.copies
        people[item.kind].add(item.resident)
    return [KindCount(kind, copies[kind], len(people[kind])) for kind in sorted(copies)]


def availability(
    samples: Mapping[str, Iterable[datetime]],
    facility_of: Mapping[str, str],
    start: datetime,
    end: datetime,
) -> list[DeviceAvailability]:
    """Per device with at least one sample in [start, end): the hours of the
    period (from the hour of its first sample there, when it has none before
    the period) and the hours with a sample. ``first_seen`` before ``start``
    is given as a sample before ``start``."""
    rows = []
    for device, moments in sorted(samples.items()):
        ordered = sorted(moments)
        inside = [m for m in ordered if start <= m < end]
        if not inside:
            continue
        earlier = ordered[0] < start
        first_hour = 0 if earlier else _bucket(inside[0], start)
        total = _bucket(end - timedelta(microseconds=1), start) + 1
        reporting = {_bucket(m, start) for m in inside}
        rows.append(
            DeviceAvailability(
                facility_of.get(device, ""), device, total - first_hour, len(reporting)
            )
        )
    return rows


def _bucket(moment: datetime, start: datetime) -> int:
    return int((moment - start) // HOUR)
