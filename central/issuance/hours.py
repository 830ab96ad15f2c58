"""Service hours as pure functions of a local clock (no I/O, no "now").

A :class:`Schedule` is a daily window, the days it is closed every year
(MM-DD), closed dates (maintenance, and holidays for weekday-only kinds) and
whether it runs on weekdays only. A kind with its own hours gets the
intersection of both windows (:func:`kind_schedule`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from central.issuance.config import HoursSection, KindSection, minutes

SEARCH_DAYS = 400  # how far ahead the next opening is looked for


@dataclass(frozen=True)
class Schedule:
    opens: int  # minutes after local midnight
    closes: int  # 1440 = midnight at the end of the day
    closed_days: frozenset[str]  # MM-DD every year
    closed_dates: frozenset[str]  # YYYY-MM-DD
    weekdays_only: bool = False

    def open_on(self, day: date) -> bool:
        if self.weekdays_only and day.weekday() >= 5:
            return False
        return f"{day:%m-%d}" not in self.closed_days and day.isoformat() not in self.closed_dates


def service_schedule(hours: HoursSection) -> Schedule:
    return Schedule(minutes(hours.opens), minutes(hours.closes), frozenset(hours.closed_days),
                    frozenset(hours.maintenance_dates))  # fmt: skip


def kind_schedule(hours: HoursSection, kind: KindSection) -> Schedule:
    """The service hours narrowed by the kind's own (holidays close weekday-only kinds)."""
    service = service_schedule(hours)
    if kind.hours is None:
        return service
    closed = service.closed_dates
    if kind.hours.weekdays_only:
        closed = closed | frozenset(hours.holidays)
    return Schedule(
        opens=max(service.opens, minutes(kind.hours.opens)),
        closes=min(service.closes, minutes(kind.hours.closes)),
        closed_days=service.closed_days,
        closed_dates=closed,
        weekdays_only=kind.hours.weekdays_only,
    )


def _at(day: date, minute: int, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), zone) + timedelta(minutes=minute)


def is_open(schedule: Schedule, moment: datetime, zone: ZoneInfo) -> bool:
    local = moment.astimezone(zone)
    minute = local.hour * 60 + local.minute
    return (
        schedule.opens < schedule.closes
        and schedule.open_on(local.date())
        and schedule.opens <= minute < schedule.closes
    )


def closes_at(schedule: Schedule, moment: datetime, zone: ZoneInfo) -> datetime | None:
    """When the current opening ends (None when closed now)."""
    if not is_open(schedule, moment, zone):
        return None
    return _at(moment.astimezone(zone).date(), schedule.closes, zone)


def next_opening(schedule: Schedule, moment: datetime, zone: ZoneInfo) -> datetime | None:
    """The next time the schedule opens after ``moment`` (None: not within a year)."""
    if schedule.opens >= schedule.closes:
        return None
    local = moment.astimezone(zone)
    for offset in range(SEARCH_DAYS):
        day = local.date() + timedelta(days=offset)
        start = _at(day, schedule.opens, zone)
        if schedule.open_on(day) and start > local:
            return start
    return None
