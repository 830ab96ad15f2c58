"""The check-in read side of the reservation cache, on a real store file."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from kiosk.checkin.reservations import StoreReservations
from sync.reservations import ReservationCache
from sync.store import Store, open_store

TOKYO = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=TOKYO)


def add(
    store: Store,
    rid: str,
    start: datetime,
    end: datetime,
    refs: list[str],
    code: str | None = None,
    status: str = "active",
) -> None:
    with store.write() as conn:
        conn.execute(
            "INSERT INTO reservations"
            " (id, facility, door, starts_at, ends_at, status, code_hash, version)"
            " VALUES (?, 'gym', 'room-a', ?, ?, ?, ?, 1)",
            (rid, int(start.timestamp()), int(end.timestamp()), status, code),
        )
        conn.executemany(
            "INSERT INTO reservation_credentials (reservation_id, credential_ref) VALUES (?, ?)",
            [(rid, ref) for ref in refs],
        )


def test_reservation_lookup_by_ref_code_and_window(tmp_path: Path) -> None:
    with open_store(tmp_path / "d.db") as store:
        add(store, "now", NOW - timedelta(minutes=5), NOW + timedelta(hours=1), ["cr1_a", "cr1_b"])
        add(
            store,
            "later",
            NOW + timedelta(days=2),
            NOW + timedelta(days=2, hours=1),
            ["cr1_a"],
            "ch1_x",
        )
        add(store, "long-ago", NOW - timedelta(days=30), NOW - timedelta(days=29), ["cr1_a"])
        add(store, "far", NOW + timedelta(days=30), NOW + timedelta(days=31), ["cr1_a"])
        add(store, "gone", NOW, NOW + timedelta(hours=1), ["cr1_c"], status="cancelled")
        source = StoreReservations(store, TOKYO)
        assert sorted(r.id for r in source.for_credential("cr1_a", NOW)) == ["later", "now"]
        assert [r.id for r in source.for_credential("cr1_b", NOW)] == ["now"]
        assert [r.id for r in source.for_code("ch1_x", NOW)] == ["later"]
        assert source.for_credential("cr1_c", NOW)[0].cancelled
        assert source.for_credential("cr1_zzz", NOW) == []
        found = source.for_credential("cr1_b", NOW)[0]
        assert found.starts_at == NOW - timedelta(minutes=5)


def test_reservation_lookup_skips_corrupt_rows(tmp_path: Path) -> None:
    with open_store(tmp_path / "d.db") as store:
        add(store, "backwards", NOW + timedelta(hours=1), NOW, ["cr1_a"])
        add(store, "good", NOW, NOW + timedelta(hours=1), ["cr1_a"])
        source = StoreReservations(store, TOKYO)
        assert [r.id for r in source.for_credential("cr1_a", NOW)] == ["good"]
        assert source.skipped_rows == 1


def test_reservation_cache_age_from_sync_state(tmp_path: Path) -> None:
    with open_store(tmp_path / "d.db") as store:
        source = StoreReservations(store, TOKYO)
        assert source.cache_age(NOW) is None
        ReservationCache(store, "gym").mark_synced()  # as the sync agent does
        age = source.cache_age(datetime.now(TOKYO))
        assert age is not None and timedelta(0) <= age < timedelta(seconds=30)
