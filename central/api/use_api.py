"""``GET /api/use``: bookings, attended, late and no-show per room and local
day or week of a facility (docs/booking.md, "Use")."""

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query
from pydantic import BaseModel

from central.db.engine import Database
from central.errors import ConflictError
from central.reservations import usage
from central.reservations.places import Places

MAX_DAYS = 366
EARLIEST, LATEST = date(2000, 1, 1), date(9998, 12, 31)


class UseOut(BaseModel):
    room: str
    period_start: date
    bookings: int
    attended: int
    late: int
    no_show: int
    pending: int


class UseReport(BaseModel):
    facility: str
    start: date
    end: date
    period: Literal["day", "week"]
    grace_minutes: int
    rows: list[UseOut]


def add_use_route(
    app: FastAPI, places: Places, db: Database, *, reader: Any, grace: timedelta,
    now: Callable[[], datetime],
) -> None:  # fmt: skip
    @app.get("/api/use", dependencies=[reader], tags=["bookings"])
    def use(
        facility: str,
        start: Annotated[date, Query(alias="from")],
        end: Annotated[date, Query(alias="to")],
        period: Literal["day", "week"] = "day",
    ) -> UseReport:
        """Use figures from ``from`` to ``to`` (local dates, inclusive, at most
        a year): a booking is attended with a granted check-in, late when the
        first one came after start + grace, a no-show with none by then."""
        if end < start or (end - start).days >= MAX_DAYS:
            raise ConflictError(f"'to' must be on or after 'from', within {MAX_DAYS} days")
        if start < EARLIEST or end > LATEST:
            # Dates at the ends of the calendar overflow once a time zone applies.
            raise ConflictError(f"dates must be from {EARLIEST} to {LATEST}")
        places.facility(facility)  # 404 for an unknown facility
        rows = usage.use_figures(db, facility, start, end, grace=grace, now=now(), period=period)
        return UseReport(
            facility=facility, start=start, end=end, period=period,
            grace_minutes=int(grace.total_seconds() // 60),
            rows=[UseOut(**vars(r)) for r in rows],
        )  # fmt: skip
