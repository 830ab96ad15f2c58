"""Reservation messages to devices, cut to fit one MQTT packet (pure logic).

The broker disconnects a client that publishes a packet over its
``max_packet_size`` (docs/protocol.md, "Limits"), and a device refuses a
payload over :data:`contracts.mqtt.MAX_PAYLOAD_BYTES`. Central therefore cuts
what it sends by bytes, not only by count:

* :func:`payload_budget` is the largest payload central publishes for a
  configured ``broker.max_packet_bytes``;
* :func:`pack` cuts a snapshot's reservations into consecutive chunks whose
  encoded message stays within that budget (and within the count limit);
* :func:`snapshot_payloads` builds each chunk's payload from the
  reservations' encodings, which are measured once and reused: the bytes are
  exactly :func:`contracts.mqtt.encode` of the chunk.
"""

from __future__ import annotations

from collections.abc import Sequence

from central.errors import CentralError
from contracts.mqtt import (
    MAX_INT,
    MAX_PAYLOAD_BYTES,
    Reservation,
    ReservationChange,
    ReservationDelta,
    ReservationSnapshotChunk,
    device_topic,
    encode,
    facility_reservations_topic,
)

# What a PUBLISH packet carries besides its payload (MQTT v5, section 3.3),
# at most, for central's reservation messages:
_LONGEST_ID = "x" * 63  # identifiers are at most 63 characters
_FIXED_HEADER = 1 + 4  # type/flags + Remaining Length (a variable byte integer)
_TOPIC = 2 + max(
    len(facility_reservations_topic(_LONGEST_ID).encode()),  # 96 bytes
    len(device_topic(_LONGEST_ID, "reservations").encode()),  # 93 bytes
)
_PACKET_ID = 2
# Central copies a resync request's correlation data into its answers; a
# longer one is not copied (the device's is 16 bytes).
MAX_CORRELATION_BYTES = 256
_PROPERTIES = 4 + (1 + 2 + MAX_CORRELATION_BYTES)  # length + Correlation Data
# 5 + 98 + 2 + 263 = 368 bytes.
PUBLISH_OVERHEAD_BYTES = _FIXED_HEADER + _TOPIC + _PACKET_ID + _PROPERTIES
# Encoded chunk counters are at most this wide (ReservationSnapshotChunk.chunks).
_MAX_CHUNKS = 100_000


class OversizedReservation(CentralError, ValueError):
    """One reservation alone does not fit the payload budget."""


def payload_budget(max_packet_bytes: int) -> int:
    """The largest reservation payload central publishes: the packet limit
    minus the PUBLISH overhead, and never above what devices accept."""
    return min(MAX_PAYLOAD_BYTES, max_packet_bytes - PUBLISH_OVERHEAD_BYTES)


def encoded_reservations(reservations: Sequence[Reservation]) -> list[bytes]:
    """Each reservation as it appears inside a chunk (compact JSON, once)."""
    to_json = Reservation.__pydantic_serializer__.to_json
    return [to_json(r) for r in reservations]


def _chunk_prefix(facility: str, version: int, snapshot_id: str, chunk: int, chunks: int) -> bytes:
    empty = encode(
        ReservationSnapshotChunk(facility=facility, version=version, snapshot_id=snapshot_id,
                                 chunk=chunk, chunks=chunks, reservations=[])
    )  # fmt: skip
    if not empty.endswith(b"[]}"):
        raise AssertionError("the chunk encoding must end with its reservation list")
    return empty[:-2]  # up to and including '['


def snapshot_overhead(facility: str, version: int, snapshot_id: str) -> int:
    """The bytes of a chunk besides its reservations and their commas, at
    most (widest chunk counters)."""
    return len(_chunk_prefix(facility, version, snapshot_id, _MAX_CHUNKS, _MAX_CHUNKS)) + 2


def pack(sizes: Sequence[int], *, overhead: int, budget: int, max_count: int) -> list[range]:
    """Consecutive index ranges over ``sizes`` (encoded lengths): each range
    holds at most ``max_count`` items and ``overhead`` + the items + one
    comma between two items stays within ``budget``. Never empty: no items
    give one empty range (an empty snapshot is one empty chunk)."""
    if max_count < 1:
        raise ValueError("max_count must be at least 1")
    ranges: list[range] = []
    start, used = 0, overhead
    for i, size in enumerate(sizes):
        if overhead + size > budget:
            raise OversizedReservation(
                f"reservation #{i} takes {size} bytes; a chunk may take {budget - overhead}"
            )
        cost = size + (1 if i > start else 0)
        if i > start and (used + cost > budget or i - start >= max_count):
            ranges.append(range(start, i))
            start, used, cost = i, overhead, size
        used += cost
    ranges.append(range(start, len(sizes)))
    return ranges


def snapshot_payloads(
    facility: str,
    version: int,
    snapshot_id: str,
    encoded: Sequence[bytes],
    *,
    budget: int,
    max_count: int,
) -> list[bytes]:
    """The payloads of one snapshot, each exactly ``encode(chunk)`` and at
    most ``budget`` bytes."""
    overhead = snapshot_overhead(facility, version, snapshot_id)
    ranges = pack([len(e) for e in encoded], overhead=overhead, budget=budget,
                  max_count=max_count)  # fmt: skip
    return [
        b"".join((_chunk_prefix(facility, version, snapshot_id, i, len(ranges)),
                  b",".join(encoded[part.start : part.stop]), b"]}"))
        for i, part in enumerate(ranges)
    ]  # fmt: skip


def delta_overhead(facility: str) -> int:
    """The bytes of a delta besides its changes and their commas, at most."""
    widest = ReservationDelta(facility=facility, prev_version=MAX_INT, version=MAX_INT, changes=[])
    return len(encode(widest))


def change_size(change: ReservationChange) -> int:
    """A change's encoded length inside a delta, plus its comma."""
    return len(ReservationChange.__pydantic_serializer__.to_json(change)) + 1
