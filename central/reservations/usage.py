"""Use of the rooms: bookings joined to the check-ins devices reported.

A door device's ``checkin.granted`` event names the reservation it granted
(``data.reservation``, the booking's ``reservation_id``: see
``kiosk/checkin/service.py``), so central matches by that id, not by door
and time. A device grants only while the reservation covers now (with its
early-entry allowance), so any granted check-in of a booking counts:

* **attended**: at least one granted check-in;
* **late**: attended, and the first check-in after start + grace;
* **no-show**: none, and start + grace has passed;
* **pending**: none yet, and start + grace is still ahead.

Cancelled bookings are not counted. Days and weeks (Monday first) are the
facility's local ones.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

from sqlalchemy import func, select

from central.db.engine import Database, aware, utc
from central.db.tables import bookings, events
from central.reservations.places import Places

GRANTED = "checkin.granted"
Period = Literal["day", "week"]


@dataclass(frozen=True)
class UseRow:
    room: str
    period_start: date  # the local day, or the Monday of the week
    bookings: int
    attended: int
    late: int
    no_show: int
    pending: int


def first_checkins(db: Database, reservation_ids: list[str]) -> dict[str, datetime]:
    """The first granted check-in per reservation id (a JSON field: the
    query differs by dialect, SQLAlchemy writes it for each)."""
    if not reservation_ids:
        return {}
    ref = events.c.data["reservation"].as_string()
    query = (
        select(ref, func.min(events.c.at))
        .where(events.c.type == GRANTED, ref.in_(reservation_ids))
        .group_by(ref)
    )
    with db.read() as conn:
        return {str(r): aware(at) for r, at in conn.execute(query)}


def use_figures(
    db: Database, facility: str, first: date, last: date, *, grace: timedelta, now: datetime,
    period: Period = "day",
) -> list[UseRow]:  # fmt: skip
    """Figures per room and local day (or week) from ``first`` to ``last`` inclusive."""
    zone = Places(db).facility(facility).zone
    start = datetime.combine(first, time(), zone)
    end = datetime.combine(last + timedelta(days=1), time(), zone)
    with db.read() as conn:
        found = conn.execute(
            select(bookings).where(
                bookings.c.facility == facility, bookings.c.status == "booked",
                bookings.c.starts_at >= utc(start), bookings.c.starts_at < utc(end),
            ).order_by(bookings.c.starts_at)
        ).all()  # fmt: skip
    checkins = first_checkins(db, sorted({r.reservation_id or r.id for r in found}))
    counts: dict[tuple[str, date], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for row in found:
        starts = aware(row.starts_at)
        day = starts.astimezone(zone).date()
        key = (row.room, day - timedelta(days=day.weekday()) if period == "week" else day)
        tally = counts[key]
        tally[0] += 1
        seen = checkins.get(row.reservation_id or row.id)
        if seen is not None:
            tally[1] += 1
            tally[2] += seen > starts + grace
        elif now >= starts + grace:
            tally[3] += 1
        else:
            tally[4] += 1
    return [UseRow(room, day, *tally) for (room, day), tally in sorted(counts.items())]


def totals(rows: list[UseRow]) -> UseRow | None:
    if not rows:
        return None
    sums = [sum(getattr(r, f) for r in rows)
            for f in ("bookings", "attended", "late", "no_show", "pending")]  # fmt: skip
    return UseRow("", rows[0].period_start, *sums)
