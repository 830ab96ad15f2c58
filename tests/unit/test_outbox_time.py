"""An event's ``at`` is what ``datetime`` writes for the same instant: RFC
3339 with milliseconds and the zone's offset, across offset changes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.outbox import _LocalStamp

ZONES = [UTC, ZoneInfo("Asia/Tokyo"), ZoneInfo("Europe/Berlin"), ZoneInfo("Australia/Lord_Howe")]
# Around the Berlin DST change of 2026-03-29 01:00 UTC, and any time in 1980-2100.
DST_CHANGE = 1_774_746_000 * 10**9
INSTANTS = st.integers(DST_CHANGE - 3 * 10**9, DST_CHANGE + 3 * 10**9) | st.integers(
    315_532_800 * 10**9, 4_102_444_800 * 10**9
)


def expected(ns: int, zone: tzinfo | None) -> str:
    """What the outbox wrote per event before: datetime.now(tz).astimezone(tz)."""
    second, rest = divmod(ns, 10**9)
    naive_or_aware = datetime.fromtimestamp(second, zone) + timedelta(microseconds=rest // 1000)
    return naive_or_aware.astimezone(zone).isoformat(timespec="milliseconds")


@pytest.fixture
def local_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local zone (timezone None) with a DST change."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@given(ns=INSTANTS, zone=st.sampled_from(ZONES))
def test_outbox_time_stamp_is_datetimes_isoformat(ns: int, zone: tzinfo) -> None:
    stamps = iter([ns, ns + 999_999, ns + 10**9 + 1])
    stamp = _LocalStamp(zone)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(time, "time_ns", lambda: next(stamps))
        # The same second twice (the cached part), then the next one.
        assert [stamp(), stamp(), stamp()] == [
            expected(t, zone) for t in (ns, ns + 999_999, ns + 10**9 + 1)
        ]


def test_outbox_time_stamp_local_zone_across_dst(
    local_zone: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    instants = [DST_CHANGE - 10**9 + 999_999_999, DST_CHANGE, DST_CHANGE + 1_500_000]
    stamps = iter(instants)
    monkeypatch.setattr(time, "time_ns", lambda: next(stamps))
    stamp = _LocalStamp(None)
    got = [stamp() for _ in instants]
    assert got == [expected(t, None) for t in instants]
    assert got[0].endswith("01:59:59.999+01:00") and got[1].endswith("03:00:00.000+02:00")
