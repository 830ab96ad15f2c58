"""``python -m sync reservations``: the cache report (counts, version, hash,
windows per door) on a real store file, with no personal data in it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from contracts.mqtt import Reservation
from sync.cache_report import cache_report, format_report
from sync.reservations import ReservationCache
from sync.store import open_store

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


def res(n: int, door: str, start_h: float, **kw: object) -> Reservation:
    return Reservation.model_validate(
        {
            "id": f"booking-{n}",
            "facility": "fac-1",
            "door": door,
            "starts_at": T0 + timedelta(hours=start_h),
            "ends_at": T0 + timedelta(hours=start_h + 1),
            "credential_refs": [f"secret-ref-{n}"],
            **kw,
        }
    )


def test_cache_report_counts_windows_per_door_without_references(tmp_path: Path) -> None:
    with open_store(tmp_path / "device.db") as store:
        cache = ReservationCache(store, "fac-1")
        cache.apply_snapshot(
            7,
            [
                res(1, "room-a", 0),
                res(2, "room-a", 3),
                res(3, "room-b", 1, code_hash="h" * 64),
                res(4, "room-b", 2, status="cancelled", credential_refs=[]),
            ],
        )
        now = (T0 + timedelta(minutes=30)).timestamp()
        report = cache_report(cache, now=now)
        assert report.active_hash == cache.active_hash(now)
    assert (report.facility, report.version) == ("fac-1", 7)
    assert (report.reservations, report.active, report.cancelled) == (4, 3, 1)
    assert (report.with_code, report.with_credentials) == (1, 3)
    room_a, room_b = report.doors
    assert (room_a.door, room_a.active, room_a.current, room_a.upcoming) == ("room-a", 2, 1, 1)
    assert room_a.first_start == "2026-04-01T09:00:00+00:00"
    assert room_a.last_end == "2026-04-01T13:00:00+00:00"
    assert room_a.next_start == "2026-04-01T12:00:00+00:00"
    assert (room_b.active, room_b.cancelled, room_b.current) == (1, 1, 0)
    text = format_report(report) + str(report.as_dict())
    assert "door room-b: 1 active (0 now, 1 upcoming), 1 cancelled" in text
    for secret in ("secret-ref", "booking-", "hhhh"):
        assert secret not in text


def test_cache_report_of_an_empty_cache(tmp_path: Path) -> None:
    with open_store(tmp_path / "device.db") as store:
        report = cache_report(ReservationCache(store, "fac-1"), now=T0.timestamp())
    assert (report.version, report.reservations, report.doors) == (0, 0, [])
    assert report.synced_at is None
    assert "synced never" in format_report(report)
