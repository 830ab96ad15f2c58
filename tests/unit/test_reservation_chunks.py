"""Central's reservation messages cut by bytes: snapshot chunks within the
payload budget (order kept, every reservation exactly once, bytes exactly
``encode(chunk)``), catch-up deltas cut between versions, the announcement
that replaces an oversized live delta."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central.reservations.chunks import (
    PUBLISH_OVERHEAD_BYTES,
    OversizedReservation,
    encoded_reservations,
    pack,
    payload_budget,
    snapshot_overhead,
    snapshot_payloads,
)
from central.reservations.publisher import announcement
from central.reservations.store import OversizedVersion, _merge
from contracts.mqtt import (
    MAX_PACKET_BYTES,
    MAX_PAYLOAD_BYTES,
    Reservation,
    ReservationChange,
    ReservationDelta,
    ReservationSnapshotChunk,
    decode,
    encode,
)

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


def reservation(n: int, refs: int, ref_len: int = 128) -> Reservation:
    return Reservation(
        id=f"r{n:06d}",
        facility="fac-1",
        door="room-a",
        starts_at=T0 + timedelta(minutes=n),
        ends_at=T0 + timedelta(minutes=n + 60),
        credential_refs=[f"{n:06d}-{i:02d}-".ljust(ref_len, "c") for i in range(refs)],
    )


def chunks_of(payloads: list[bytes]) -> list[ReservationSnapshotChunk]:
    return [decode(ReservationSnapshotChunk, p) for p in payloads]


def test_reservation_chunks_budget_leaves_room_for_the_publish_overhead() -> None:
    assert payload_budget(MAX_PACKET_BYTES) == MAX_PAYLOAD_BYTES  # the default fits
    assert payload_budget(64 * 1024) == 64 * 1024 - PUBLISH_OVERHEAD_BYTES
    assert PUBLISH_OVERHEAD_BYTES == 368


def test_reservation_chunks_cut_a_snapshot_of_32_ref_reservations_by_bytes() -> None:
    """500 reservations with 32 references of 128 characters: about 2.2 MB,
    which the old count-only cut sent as one chunk (refused by the broker)."""
    items = [reservation(n, refs=32) for n in range(500)]
    budget = payload_budget(MAX_PACKET_BYTES)
    payloads = snapshot_payloads("fac-1", 7, "snap", encoded_reservations(items),
                                 budget=budget, max_count=500)  # fmt: skip
    assert len(payloads) > 1
    assert all(len(p) <= budget for p in payloads)
    chunks = chunks_of(payloads)
    assert [c.chunk for c in chunks] == list(range(len(chunks)))
    assert {(c.chunks, c.version, c.snapshot_id) for c in chunks} == {(len(chunks), 7, "snap")}
    assert [r for c in chunks for r in c.reservations] == items
    assert [encode(c) for c in chunks] == payloads  # exactly what encode() publishes
    # Full chunks: the next reservation (all have the same size) would not fit.
    size = len(encoded_reservations(items[:1])[0])
    assert all(len(p) + 1 + size > budget - 10 for p in payloads[:-1])


@settings(max_examples=100, deadline=None)
@given(
    refs=st.lists(st.integers(0, 32), max_size=60),
    ref_len=st.integers(1, 128),
    budget=st.integers(6_000, 40_000),
    max_count=st.integers(1, 20),
)
def test_reservation_chunks_every_chunk_fits_order_kept_each_once(
    refs: list[int], ref_len: int, budget: int, max_count: int
) -> None:
    items = [reservation(n, refs=k, ref_len=ref_len) for n, k in enumerate(refs)]
    payloads = snapshot_payloads("fac-1", 3, "s", encoded_reservations(items),
                                 budget=budget, max_count=max_count)  # fmt: skip
    chunks = chunks_of(payloads)
    assert all(len(p) <= budget for p in payloads)
    assert all(len(c.reservations) <= max_count for c in chunks)
    assert [r for c in chunks for r in c.reservations] == items
    assert [c.chunk for c in chunks] == list(range(len(chunks)))
    assert all(c.chunks == len(chunks) for c in chunks)
    assert [encode(c) for c in chunks] == payloads
    if not items:
        assert len(chunks) == 1  # an empty snapshot is one empty chunk


@settings(max_examples=100, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 100), max_size=50),
    budget=st.integers(150, 400),
    max_count=st.integers(1, 10),
)
def test_reservation_chunks_pack_ranges_cover_every_index_in_order(
    sizes: list[int], budget: int, max_count: int
) -> None:
    ranges = pack(sizes, overhead=50, budget=budget, max_count=max_count)
    assert [i for r in ranges for i in r] == list(range(len(sizes)))
    for r in ranges:
        part = [sizes[i] for i in r]
        assert len(part) <= max_count
        assert 50 + sum(part) + max(len(part) - 1, 0) <= budget


def test_reservation_chunks_refuse_a_reservation_larger_than_a_chunk() -> None:
    big = encoded_reservations([reservation(1, refs=32)])
    overhead = snapshot_overhead("fac-1", 1, "s")
    with pytest.raises(OversizedReservation):
        snapshot_payloads("fac-1", 1, "s", big, budget=overhead + len(big[0]) - 1, max_count=5)
    assert len(snapshot_payloads("fac-1", 1, "s", big, budget=overhead + len(big[0]),
                                 max_count=5)) == 1  # fmt: skip


def rows(versions: int, per_version: int, refs: int) -> list[tuple[int, list[dict[str, Any]]]]:
    return [
        (v, [ReservationChange(op="upsert", reservation=reservation(v * 100 + i, refs=refs))
             .model_dump(mode="json") for i in range(per_version)])
        for v in range(11, 11 + versions)
    ]  # fmt: skip


def test_reservation_chunks_catch_up_deltas_cut_between_versions_by_bytes() -> None:
    budget = 40_000
    deltas = _merge("fac-1", 10, rows(versions=20, per_version=3, refs=16), budget)
    assert len(deltas) > 1
    assert all(len(encode(d)) <= budget for d in deltas)
    assert deltas[0].prev_version == 10 and deltas[-1].version == 30
    assert all(a.version == b.prev_version for a, b in itertools.pairwise(deltas))
    assert sum(len(d.changes) for d in deltas) == 60


def test_reservation_chunks_catch_up_refuses_one_version_over_the_budget() -> None:
    with pytest.raises(OversizedVersion) as caught:
        _merge("fac-1", 10, rows(versions=2, per_version=200, refs=32), MAX_PAYLOAD_BYTES)
    assert caught.value.version == 11


def test_reservation_chunks_announcement_is_a_gap_for_devices_behind() -> None:
    delta = ReservationDelta(facility="fac-1", prev_version=4, version=5, changes=[])
    marker = announcement(delta)
    assert (marker.prev_version, marker.version, marker.changes) == (5, 5, [])
    assert len(encode(marker)) < 200
