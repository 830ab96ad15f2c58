"""The reservation cache and the device-side sync decisions, on a real
SQLite store file with a fake clock."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contracts.mqtt import (
    Reservation,
    ReservationChange,
    ReservationDelta,
    ReservationSnapshotChunk,
)
from contracts.reservations_hash import active_hash as central_active_hash
from contracts.reservations_hash import same_content
from sync.reservations import (
    ReservationCache,
    ReservationSync,
    SnapshotAssembler,
    SnapshotError,
)
from sync.store import Store, open_store

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


def res(n: int, *, start_h: float = 0, hours: float = 1, **kw: object) -> Reservation:
    fields: dict[str, object] = {
        "id": f"r{n}",
        "facility": "fac-1",
        "door": "room-a",
        "starts_at": T0 + timedelta(hours=start_h),
        "ends_at": T0 + timedelta(hours=start_h + hours),
        "credential_refs": [f"cred-{n}"],
        **kw,
    }
    return Reservation.model_validate(fields)


def delta(prev: int, version: int, *changes: tuple[str, Reservation]) -> ReservationDelta:
    return ReservationDelta.model_validate(
        {
            "facility": "fac-1",
            "prev_version": prev,
            "version": version,
            "changes": [
                ReservationChange.model_validate({"op": o, "reservation": r}) for o, r in changes
            ],
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path / "device.db") as s:
        yield s


@pytest.fixture
def cache(store: Store) -> ReservationCache:
    return ReservationCache(store, "fac-1")


def test_cache_apply_delta_outcomes(cache: ReservationCache) -> None:
    assert cache.apply_delta(delta(0, 1, ("upsert", res(1)))) == "applied"
    assert cache.apply_delta(delta(0, 1, ("upsert", res(9)))) == "stale"
    assert cache.apply_delta(delta(2, 3, ("upsert", res(3)))) == "gap"
    foreign = delta(1, 2).model_copy(update={"facility": "fac-2"})
    assert cache.apply_delta(foreign) == "foreign"
    assert cache.version() == 1
    assert cache.count() == 1


def test_cache_cancel_hides_reservation_from_lookup(cache: ReservationCache) -> None:
    cache.apply_delta(delta(0, 1, ("upsert", res(1))))
    at = (T0 + timedelta(minutes=10)).timestamp()
    assert [r.id for r in cache.lookup("cred-1", "room-a", at)] == ["r1"]
    cache.apply_delta(delta(1, 2, ("cancel", res(1))))
    assert cache.lookup("cred-1", "room-a", at) == []
    assert cache.version() == 2


def test_cache_lookup_respects_door_time_and_margins(cache: ReservationCache) -> None:
    cache.apply_snapshot(4, [res(1, code_hash="h1"), res(2, start_h=3)])
    start = T0.timestamp()
    assert cache.lookup("cred-1", "room-b", start + 60) == []
    assert cache.lookup("cred-1", "room-a", start - 300) == []
    assert [r.id for r in cache.lookup("cred-1", "room-a", start - 300, early_s=600)] == ["r1"]
    assert cache.lookup("cred-1", "room-a", start + 3600 + 60) == []
    assert len(cache.lookup("cred-1", "room-a", start + 3600 + 60, late_s=120)) == 1
    assert [r.id for r in cache.lookup_code("h1", "room-a", start + 1)] == ["r1"]


def test_cache_update_replaces_credentials(cache: ReservationCache) -> None:
    cache.apply_delta(delta(0, 1, ("upsert", res(1))))
    cache.apply_delta(delta(1, 2, ("upsert", res(1, credential_refs=["cred-new"]))))
    at = T0.timestamp() + 1
    assert cache.lookup("cred-1", "room-a", at) == []
    assert len(cache.lookup("cred-new", "room-a", at)) == 1


def test_cache_snapshot_replaces_everything(cache: ReservationCache) -> None:
    cache.apply_delta(delta(0, 1, ("upsert", res(1))))
    settings = [cache.store.query(f"PRAGMA {p}")[0][0] for p in ("cache_size", "foreign_keys")]
    # More than a staging statement's worth of rows (100, and 400 credentials).
    cache.apply_snapshot(7, [res(n, credential_refs=[f"cred-{n}", "all"]) for n in range(2, 253)])
    assert cache.version() == 7
    assert cache.count() == 251
    assert cache.lookup("cred-1", "room-a", T0.timestamp() + 1) == []
    assert [r.id for r in cache.lookup("cred-252", "room-a", T0.timestamp() + 1)] == ["r252"]
    assert len(cache.lookup("all", "room-a", T0.timestamp() + 1)) == 251
    # The swap's larger page cache is given back, foreign-key checks are on again.
    assert [cache.store.query(f"PRAGMA {p}")[0][0] for p in ("cache_size", "foreign_keys")] == (
        settings
    )


def test_active_hash_matches_centrals_function_whatever_the_history(tmp_path: Path) -> None:
    now = T0.timestamp()
    final = [res(1), res(2, credential_refs=["b", "a"]), res(3, start_h=5, code_hash="h")]
    outside = res(8, start_h=48)  # beyond the 24 h window: not part of the hash
    with open_store(tmp_path / "a.db") as a, open_store(tmp_path / "b.db") as b:
        ca, cb = ReservationCache(a, "fac-1"), ReservationCache(b, "fac-1")
        ca.apply_snapshot(4, [*final, outside, res(4, status="cancelled")])
        cb.apply_delta(
            delta(0, 1, ("upsert", res(3, start_h=5, code_hash="h")), ("upsert", res(2)))
        )
        cb.apply_delta(delta(1, 2, ("upsert", res(1)), ("upsert", res(9))))
        assert ca.active_hash(now) != cb.active_hash(now)
        cb.apply_delta(delta(2, 3, ("cancel", res(9))))
        cb.apply_delta(delta(3, 4, ("upsert", res(2, credential_refs=["a", "b"]))))
        # Same content in the window, different history: same hash, central's hash.
        expected = central_active_hash(final, now)
        assert ca.active_hash(now) == cb.active_hash(now) == expected
        assert expected.startswith(f"v1:{int(now) // 3600 * 3600}:24:")
        assert same_content(expected, [*final, outside])
        cb.apply_delta(delta(4, 5, ("cancel", res(1))))
        assert cb.active_hash(now) == central_active_hash(final[1:], now)
        # A later window is another hash (and the cache follows the window).
        later = now + 2 * 3600
        assert cb.active_hash(later) == central_active_hash(final[1:], later)


def chunk(
    i: int, n: int, items: list[Reservation], sid: str = "s1", version: int = 9
) -> ReservationSnapshotChunk:
    return ReservationSnapshotChunk(
        facility="fac-1", version=version, snapshot_id=sid, chunk=i, chunks=n, reservations=items
    )


def test_snapshot_assembler_completes_in_chunk_order() -> None:
    asm = SnapshotAssembler("fac-1")
    assert asm.add(chunk(1, 2, [res(2)])) is None
    assert asm.add(chunk(1, 2, [res(2)])) is None  # duplicate delivery
    done = asm.add(chunk(0, 2, [res(1)]))
    assert done is not None
    assert done[0] == 9
    assert [r.id for r in done[1]] == ["r1", "r2"]


def test_snapshot_assembler_rejects_bad_chunks() -> None:
    asm = SnapshotAssembler("fac-1", max_reservations=2)
    with pytest.raises(SnapshotError):
        asm.add(chunk(2, 2, []))
    asm.add(chunk(0, 3, [res(1)]))
    with pytest.raises(SnapshotError):
        asm.add(chunk(1, 4, []))
    asm.add(chunk(0, 3, [res(1), res(2)]))
    with pytest.raises(SnapshotError):
        asm.add(chunk(1, 3, [res(3)]))
    with pytest.raises(SnapshotError):
        SnapshotAssembler("fac-2").add(chunk(0, 1, []))


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_sync_requests_once_until_answer_or_timeout(cache: ReservationCache) -> None:
    clock = FakeClock()
    sync = ReservationSync(cache, resync_timeout=10, clock=clock, wall=T0.timestamp)
    first = sync.request_due()
    assert first is not None and first.from_version == 0
    assert sync.request_due() is None
    clock.now += 11
    assert sync.request_due() is not None  # unanswered: asked again
    assert sync.on_answer(chunk(0, 1, [], version=0)) == "applied"
    clock.now += 100
    assert sync.request_due() is None


def test_sync_gap_buffers_live_delta_until_answer(cache: ReservationCache) -> None:
    clock = FakeClock()
    sync = ReservationSync(cache, resync_timeout=10, clock=clock, wall=T0.timestamp)
    sync.on_answer(chunk(0, 1, [], version=0))
    assert sync.on_live_delta(delta(0, 1, ("upsert", res(1)))) == "applied"
    assert sync.on_live_delta(delta(2, 3, ("upsert", res(3)))) == "gap"
    request = sync.request_due()
    assert request is not None and request.from_version == 1
    assert sync.on_answer(delta(1, 2, ("upsert", res(2)))) == "applied"
    assert cache.version() == 3
    assert sync.request_due() is None


def test_sync_ignores_stale_snapshot(cache: ReservationCache) -> None:
    sync = ReservationSync(cache, clock=FakeClock())
    cache.apply_snapshot(10, [res(1)])
    assert sync.on_answer(chunk(0, 1, [res(5)], version=8)) == "stale"
    assert cache.version() == 10 and cache.count() == 1


def test_sync_abandoned_snapshot_leaves_nothing_staged(cache: ReservationCache) -> None:
    sync = ReservationSync(cache, clock=FakeClock())
    assert sync.on_answer(chunk(0, 2, [res(1)], sid="old")) is None
    assert cache.count() == 0  # staged, not applied
    assert sync.on_answer(chunk(0, 1, [res(2)], sid="new", version=11)) == "applied"
    assert cache.version() == 11
    assert [r.id for r in cache.lookup("cred-2", "room-a", T0.timestamp() + 1)] == ["r2"]
    assert cache.count() == 1
    # A bad chunk drops what was staged for its snapshot.
    sync.on_answer(chunk(0, 2, [res(3)], sid="bad", version=12))
    with pytest.raises(SnapshotError):
        sync.on_answer(chunk(1, 3, [res(4)], sid="bad", version=12))
    assert sync.on_answer(chunk(0, 1, [res(5)], sid="next", version=13)) == "applied"
    assert cache.count() == 1 and cache.version() == 13


def test_cache_snapshot_cut_off_midway_leaves_previous_cache(tmp_path: Path) -> None:
    # Chunks are staged in the store itself: a process that stops between two
    # of them (a crash, a power cut) leaves what it committed staged, and the
    # previous cache untouched.
    path = tmp_path / "device.db"
    with open_store(path) as first:
        cache = ReservationCache(first, "fac-1")
        cache.apply_snapshot(5, [res(1), res(2)])
        sync = ReservationSync(cache, clock=FakeClock())
        assert sync.on_answer(chunk(0, 2, [res(3)], sid="cut", version=6)) is None
    with open_store(path) as again:
        cache = ReservationCache(again, "fac-1")
        assert again.integrity_problems() == []
        assert cache.version() == 5 and cache.count() == 2
        assert [r.id for r in cache.lookup("cred-2", "room-a", T0.timestamp() + 1)] == ["r2"]
        sync = ReservationSync(cache, clock=FakeClock())
        assert sync.on_answer(chunk(1, 2, [res(4)], sid="next", version=7)) is None
        assert sync.on_answer(chunk(0, 2, [res(5)], sid="next", version=7)) == "applied"
        assert sorted(r["id"] for r in again.query("SELECT id FROM reservations")) == ["r4", "r5"]
        assert again.query("SELECT count(*) FROM reservation_credentials")[0][0] == 2
        tables = {r["name"] for r in again.query("SELECT name FROM sqlite_master")}
        assert not {"reservations_next", "reservation_credentials_next"} & tables
        assert again.integrity_problems() == []
        assert again.query("PRAGMA foreign_key_check") == []


def test_sync_unanswered_requests_back_off_with_jitter_until_answered(
    cache: ReservationCache,
) -> None:
    clock = FakeClock()
    sync = ReservationSync(
        cache, resync_timeout=10, clock=clock, wall=T0.timestamp, rng=random.Random(5)
    )
    waits = []
    assert sync.request_due() is not None
    for _ in range(6):
        deadline = sync.next_deadline()
        assert deadline is not None
        waits.append(deadline - clock.now)
        clock.now = deadline
        assert sync.request_due() is not None  # unanswered: asked again, later each time
    assert waits[0] == 10  # the first wait is the configured one
    assert 16 <= waits[1] <= 24 and 32 <= waits[2] <= 48
    assert all(64 <= w <= 96 for w in waits[3:])  # capped at 8x, give or take 20 %
    assert sync.on_answer(chunk(0, 1, [], version=0)) == "applied"
    sync.on_connected()
    assert sync.request_due() is not None
    assert sync.next_deadline() == clock.now + 10  # answered: back to the configured wait
