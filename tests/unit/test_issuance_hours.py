"""Service hours on a fixed clock (central/issuance/hours.py)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from central.issuance.config import HoursSection, IssuanceSection
from central.issuance.hours import (
    closes_at,
    is_open,
    kind_schedule,
    next_opening,
    service_schedule,
)

JST = ZoneInfo("Asia/Tokyo")
HOURS = HoursSection(maintenance_dates=["2025-06-18"], holidays=["2025-07-21"])
SERVICE = service_schedule(HOURS)
KOSEKI = kind_schedule(HOURS, IssuanceSection().kind("koseki_zenbu"))  # type: ignore[arg-type]


def jst(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=JST)


def test_hours_open_between_0630_and_2300() -> None:
    assert not is_open(SERVICE, jst(2025, 6, 11, 6, 29), JST)
    assert is_open(SERVICE, jst(2025, 6, 11, 6, 30), JST)
    assert is_open(SERVICE, jst(2025, 6, 11, 22, 59), JST)
    assert not is_open(SERVICE, jst(2025, 6, 11, 23, 0), JST)
    assert closes_at(SERVICE, jst(2025, 6, 11, 12, 0), JST) == jst(2025, 6, 11, 23, 0)
    assert closes_at(SERVICE, jst(2025, 6, 11, 23, 30), JST) is None


def test_hours_take_the_time_zone_into_account() -> None:
    utc_evening = datetime.fromisoformat("2025-06-11T21:45:00+00:00")  # 06:45 JST on the 12th
    assert is_open(SERVICE, utc_evening, JST)


def test_hours_next_opening_after_closing_is_next_morning() -> None:
    assert next_opening(SERVICE, jst(2025, 6, 11, 23, 30), JST) == jst(2025, 6, 12, 6, 30)
    assert next_opening(SERVICE, jst(2025, 6, 12, 2, 0), JST) == jst(2025, 6, 12, 6, 30)


def test_hours_closed_over_new_year_opens_january_4() -> None:
    for day in (jst(2025, 12, 29, 12), jst(2025, 12, 31, 12), jst(2026, 1, 3, 12)):
        assert not is_open(SERVICE, day, JST)
    assert next_opening(SERVICE, jst(2025, 12, 28, 23, 10), JST) == jst(2026, 1, 4, 6, 30)
    assert is_open(SERVICE, jst(2025, 12, 28, 12), JST)


def test_hours_maintenance_day_closes_everything() -> None:
    assert not is_open(SERVICE, jst(2025, 6, 18, 12), JST)
    assert next_opening(SERVICE, jst(2025, 6, 18, 12), JST) == jst(2025, 6, 19, 6, 30)


def test_hours_koseki_weekdays_0900_to_1700_and_not_on_holidays() -> None:
    assert is_open(KOSEKI, jst(2025, 6, 11, 9, 0), JST)  # Wednesday
    assert not is_open(KOSEKI, jst(2025, 6, 11, 8, 59), JST)
    assert not is_open(KOSEKI, jst(2025, 6, 11, 17, 0), JST)
    assert not is_open(KOSEKI, jst(2025, 6, 14, 10), JST)  # Saturday
    assert next_opening(KOSEKI, jst(2025, 6, 13, 18), JST) == jst(2025, 6, 16, 9, 0)
    assert not is_open(KOSEKI, jst(2025, 7, 21, 10), JST)  # 海の日
    assert is_open(SERVICE, jst(2025, 7, 21, 10), JST)  # the service itself is open


def test_hours_always_open_and_never_open() -> None:
    always = service_schedule(HoursSection(opens="00:00", closes="24:00", closed_days=[]))
    assert is_open(always, jst(2025, 12, 31, 23, 59), JST)
    with pytest.raises(ValidationError):
        HoursSection(opens="10:00", closes="09:00")
    with pytest.raises(ValidationError):
        HoursSection(opens="25:00")
