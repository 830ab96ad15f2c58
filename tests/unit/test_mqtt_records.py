"""A snapshot chunk validated whole into records (the device's fast path)
follows the same contract as the models: same schema, same refusals, same rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from contracts.mqtt import (
    ProtocolError,
    Reservation,
    ReservationDelta,
    ReservationRecord,
    ReservationSnapshotChunk,
    SnapshotChunkRecord,
    decode,
    encode,
)
from sync.snapshot_rows import SnapshotPart, decode_answer, snapshot_part

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


def _schema(kind: Any) -> dict[str, Any]:
    schema = kind.model_json_schema() if hasattr(kind, "model_json_schema") else (
        TypeAdapter(kind).json_schema()
    )  # fmt: skip
    # Defaults are absent keys in a record: compare types and rules only.
    props = {k: {f: v for f, v in p.items() if f not in ("default", "title")}
             for k, p in schema["properties"].items()}  # fmt: skip
    defs = {n: _schema_of(d) for n, d in schema.get("$defs", {}).items()}
    return {"properties": props, "extra": schema.get("additionalProperties"), "defs": defs}


def _schema_of(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: {f: v for f, v in p.items() if f not in ("default", "title")}
            for k, p in schema.get("properties", {}).items()}  # fmt: skip


def test_mqtt_records_have_the_models_schema_but_for_timestamps() -> None:
    # The records' timestamps are strings that sync.snapshot_rows checks with aware_epoch.
    record, model = _schema(ReservationRecord), _schema(Reservation)
    assert record["extra"] is model["extra"] is False
    times = {"starts_at", "ends_at"}
    assert {k: v for k, v in record["properties"].items() if k not in times} == {
        k: v for k, v in model["properties"].items() if k not in times
    }
    assert (
        record["properties"]["starts_at"] == record["properties"]["ends_at"] == {"type": "string"}
    )
    chunk, model = _schema(SnapshotChunkRecord), _schema(ReservationSnapshotChunk)
    assert chunk["properties"].keys() == model["properties"].keys()
    for name in chunk["properties"]:
        if name != "reservations":  # refers to ReservationRecord vs Reservation
            assert chunk["properties"][name] == model["properties"][name], name
    assert chunk["extra"] is model["extra"] is False


def reservation(n: int, **kw: Any) -> Reservation:
    fields: dict[str, Any] = {
        "id": f"r{n}", "facility": "fac-1", "door": "room-a",
        "starts_at": T0 + timedelta(minutes=n), "ends_at": T0 + timedelta(hours=1, minutes=n),
        "credential_refs": [f"cred-{n}", "group"], **kw,
    }  # fmt: skip
    return Reservation.model_validate(fields)


def payload(items: list[Reservation], **kw: Any) -> bytes:
    fields: dict[str, Any] = {"facility": "fac-1", "version": 3, "snapshot_id": "s",
                              "chunk": 0, "chunks": 1, "reservations": items, **kw}  # fmt: skip
    return encode(ReservationSnapshotChunk(**fields))


def test_mqtt_records_give_the_models_rows() -> None:
    tokyo = timezone(timedelta(hours=9))
    late = datetime(2026, 4, 1, 18, tzinfo=tokyo)
    items = [reservation(1), reservation(2, code_hash="h", status="cancelled", starts_at=late)]
    data = payload(items)
    fast = decode_answer(data)
    assert isinstance(fast, SnapshotPart)
    slow = SnapshotPart.of(decode(ReservationSnapshotChunk, data))
    assert (fast.rows, fast.credentials) == (slow.rows, slow.credentials)
    assert (fast.facility, fast.version, fast.snapshot_id, fast.chunk, fast.chunks) == (
        "fac-1", 3, "s", 0, 1)  # fmt: skip


# Timestamps the model takes in other forms than central writes, and ones it refuses.
TIMESTAMPS = ["2026-04-01T09:00:00+09:00", "2026-04-01 09:00:00z", "2026-04-01T09:00:00.9999995Z",
              "2026-04-01T09:00:00.5-00:30", "1775000000", 1775000000.5, "1969-12-31T23:59:59.5Z",
              "2026-04-01T23:59:60Z", "2026-04-01T09:00Z", "2026-04-01T09:00:00+24:00",
              "2026-04-01", " 2026-04-01T09:00:00Z"]  # fmt: skip


def _mutations() -> st.SearchStrategy[tuple[str, Any]]:
    values: list[Any] = [None, 1, "", "x" * 65, "Room A", "2026-04-01T09:00:00", [1], {}, 1.5,
              "room-a\n", "2026-02-30T09:00:00Z", "nan", *TIMESTAMPS]  # fmt: skip
    bad: st.SearchStrategy[Any] = st.sampled_from(values)
    field = st.sampled_from(["id", "facility", "door", "starts_at", "ends_at",
                             "credential_refs", "code_hash", "status", "extra"])  # fmt: skip
    return st.tuples(field, bad)


@settings(max_examples=200)
@given(_mutations(), st.sampled_from(["chunk", "version", "chunks", "facility", "v", "kind", "x"]),
       st.sampled_from([None, -1, 0, "1", 2**63, 100001, "bad id", 2, "delta"]))  # fmt: skip
def test_mqtt_records_refuse_what_the_model_refuses(
    change: tuple[str, Any], top: str, value: Any
) -> None:
    data = json.loads(payload([reservation(1), reservation(2)]))
    field, bad = change
    data["reservations"][1][field] = bad
    for variant in (data, {**data, top: value}):
        raw = json.dumps(variant).encode()
        expected: Any
        try:
            expected = SnapshotPart.of(decode(ReservationSnapshotChunk, raw))
            expected = (expected.rows, expected.credentials)
        except ProtocolError as exc:
            expected = str(exc)
        got: Any
        try:
            got = snapshot_part(raw)
            got = (got.rows, got.credentials)
        except ProtocolError as exc:
            got = str(exc)
        assert got == expected


def test_mqtt_records_decode_answer_tells_deltas_and_chunks_apart() -> None:
    delta = ReservationDelta(facility="fac-1", prev_version=1, version=2, changes=[])
    assert isinstance(decode_answer(encode(delta)), ReservationDelta)
    # A chunk written with another key order is still a chunk.
    reordered = json.dumps(dict(reversed(json.loads(payload([reservation(1)])).items())))
    assert isinstance(decode_answer(reordered.encode()), SnapshotPart)
    with pytest.raises(ProtocolError, match="ReservationSnapshotChunk invalid at reservations"):
        decode_answer(payload([reservation(1)]).replace(b'"fac-1","door"', b'"fac-1","door2"'))
    with pytest.raises(ProtocolError, match="not JSON"):
        decode_answer(b'{"v":1,"kind":"snapshot",')
