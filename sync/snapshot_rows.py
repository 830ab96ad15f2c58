"""Snapshot chunks as the rows of the device's reservation cache.

A snapshot of 100,000 reservations arrives as about 100 chunks; each payload
is validated whole as it arrives (:func:`snapshot_part`, the contract's rules
and refusals, :mod:`contracts.mqtt`) into the rows
:class:`sync.reservations.ReservationCache` stages. Figures:
``docs/performance.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from operator import itemgetter

from contracts.mqtt import (
    MAX_PAYLOAD_BYTES,
    Reservation,
    ReservationDelta,
    ReservationSnapshotChunk,
    SnapshotChunkRecord,
    aware_epoch,
    decode,
    decode_snapshot_records,
)

Row = tuple[str, str, str, int, int, str, str | None, int]


def reservation_row(res: Reservation, version: int) -> Row:
    return (
        res.id,
        res.facility,
        res.door,
        int(res.starts_at.timestamp()),
        int(res.ends_at.timestamp()),
        res.status,
        res.code_hash,
        version,
    )


@dataclass(frozen=True, slots=True)
class SnapshotPart:
    """One validated snapshot chunk as the rows of the cache's two tables.

    Made from the payload by :func:`snapshot_part` (the whole chunk validated
    at once, into dicts: no model per reservation) or from a
    :class:`ReservationSnapshotChunk` by :meth:`of` (which also keeps its
    ``reservations`` for an assembler that does not stage)."""

    facility: str
    version: int
    snapshot_id: str
    chunk: int
    chunks: int
    rows: list[Row]
    credentials: list[tuple[str, str]]  # (credential_ref, reservation_id)
    reservations: tuple[Reservation, ...] = ()

    @classmethod
    def of(cls, chunk: ReservationSnapshotChunk) -> SnapshotPart:
        items = chunk.reservations
        return cls(
            chunk.facility, chunk.version, chunk.snapshot_id, chunk.chunk, chunk.chunks,
            [reservation_row(r, chunk.version) for r in items],
            [(ref, r.id) for r in items for ref in r.credential_refs],
            tuple(items),
        )  # fmt: skip


# A reservation's fields in row order, then its credential references.
_RECORD_FIELDS = itemgetter(
    "id", "facility", "door", "starts_at", "ends_at", "status", "code_hash", "credential_refs"
)
# Timestamp string -> epoch seconds, kept across chunks (a snapshot repeats
# the same few start and end times); cleared when it grows past its bound.
_EPOCHS: dict[str, int] = {}
_MAX_EPOCHS = 16384


def _epochs(texts: set[str]) -> dict[str, int] | None:
    """The epoch of each timestamp string, None if one is refused."""
    if len(_EPOCHS) + len(texts) > _MAX_EPOCHS:
        _EPOCHS.clear()
    for text in texts - _EPOCHS.keys():
        epoch = aware_epoch(text)
        if epoch is None:
            return None
        _EPOCHS[text] = epoch
    return _EPOCHS


def _records_part(chunk: SnapshotChunkRecord) -> SnapshotPart | None:
    """Rows of a chunk validated but for its timestamps; None if one is refused."""
    version, items = chunk["version"], chunk["reservations"]
    try:
        got = list(map(_RECORD_FIELDS, items))
    except KeyError:  # defaults left out (central writes every field)
        got = [(r["id"], r["facility"], r["door"], r["starts_at"], r["ends_at"],
                r.get("status", "active"), r.get("code_hash"), r.get("credential_refs", []))
               for r in items]  # fmt: skip
    epochs = _epochs({g[3] for g in got} | {g[4] for g in got})
    if epochs is None:
        return None
    return SnapshotPart(
        chunk["facility"], version, chunk["snapshot_id"], chunk["chunk"], chunk["chunks"],
        [(i, f, d, epochs[s], epochs[e], st, h, version) for i, f, d, s, e, st, h, _ in got],
        [(ref, g[0]) for g in got for ref in g[7]],
    )  # fmt: skip


def snapshot_part(payload: bytes) -> SnapshotPart:
    """Validate a snapshot chunk payload (all of it) into rows; raises
    :class:`~contracts.mqtt.ProtocolError` and nothing is kept.

    Records check every rule but the timestamps', which are checked and
    converted once per distinct string; whatever they do not take (a
    refusal, or another form such as timestamps written as numbers) is
    decided by the :class:`~contracts.mqtt.ReservationSnapshotChunk` model
    itself, so verdicts and messages are the model's."""
    records = decode_snapshot_records(payload)
    part = None if records is None else _records_part(records)
    if part is not None:
        return part
    return replace(SnapshotPart.of(decode(ReservationSnapshotChunk, payload)), reservations=())


# How central writes a snapshot chunk (contracts.mqtt.encode of the model):
# the kind is its second key, so a chunk is known without parsing it twice.
_SNAPSHOT_PREFIX = b'{"v":1,"kind":"snapshot",'


def decode_answer(payload: bytes) -> ReservationDelta | SnapshotPart:
    """A message on the device's reservations topic: a delta or a snapshot
    chunk (by its ``kind``), validated; raises ``ProtocolError``."""
    if payload.startswith(_SNAPSHOT_PREFIX):
        return snapshot_part(payload)
    try:
        kind = json.loads(payload).get("kind") if len(payload) <= MAX_PAYLOAD_BYTES else None
    except (ValueError, AttributeError):
        kind = None
    if kind == "snapshot":
        return snapshot_part(payload)
    return decode(ReservationDelta, payload)
