"""Hypothesis strategies for MQTT payloads: valid examples of every message
central and a device take, and bad ones made from them (arbitrary bytes, any
JSON, the valid payload with one value replaced, removed or added, numbers at
the edges of what the databases hold)."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import strategies as st

from contracts.commands import sign
from contracts.mqtt import (
    Ack,
    EventBatch,
    Health,
    Reservation,
    ReservationChange,
    ReservationDelta,
    ReservationSnapshotChunk,
    ResyncRequest,
    StaffCallState,
    Status,
    encode,
)

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# Numbers at the edges of what SQLite, PostgreSQL and datetimes can hold.
EDGES = st.sampled_from(
    [
        0,
        -1,
        2**31,
        2**63 - 1,
        2**63,
        2**64,
        10**30,
        -(10**30),
        1e308,
        float("nan"),
        float("-inf"),
        "9999-12-31T23:59:59+14:00",
        "0001-01-01T00:00:00-12:00",
        "",
    ]
)


def event_batch(
    device: str, seqs: Sequence[int], *, pad: int = 0, data: Sequence[dict[str, Any]] = ()
) -> EventBatch:
    """``door.opened`` events with these seqs; ``pad`` bytes of filler in
    each, or ``data`` as the events' data, one per seq."""
    filler = {"pad": "x" * pad} if pad else {}
    datas = list(data) or [{"door": "room-a", **filler} for _ in seqs]
    return EventBatch.model_validate(
        {
            "device": device,
            "events": [
                {"id": str(uuid.uuid4()), "seq": s, "type": "door.opened", "at": T0,
                 "clock_trusted": True, "data": d}
                for s, d in zip(seqs, datas, strict=True)
            ],
        }
    )  # fmt: skip


def reservation(n: int) -> Reservation:
    return Reservation(
        id=f"r{n}",
        facility="fac-1",
        door="room-a",
        starts_at=T0,
        ends_at=T0 + timedelta(hours=1),
        credential_refs=[f"c{n}"],
    )


CENTRAL_VALID: dict[str, bytes] = {
    "events": encode(event_batch("dev-a", [1, 2])),
    "status": encode(Status(state="online", session=3, at=T0, versions={"sync": "1"})),
    "health": encode(
        Health(
            at=T0,
            session=3,
            outbox_depth=2,
            reservation_version=4,
            reservation_hash="v1:x",
            versions={"sync": "1"},
        )
    ),
    "requests": encode(ResyncRequest(facility="fac-1", from_version=2, active_hash="v1:y")),
}
DEVICE_VALID: dict[str, bytes] = {
    "acks": encode(Ack(ids=[str(uuid.uuid4())])),
    "facility": encode(
        ReservationDelta(
            facility="fac-1",
            prev_version=0,
            version=1,
            changes=[ReservationChange(op="upsert", reservation=reservation(1))],
        )
    ),
    "reservations": encode(
        ReservationSnapshotChunk(
            facility="fac-1",
            version=3,
            snapshot_id="s1",
            chunk=0,
            chunks=1,
            reservations=[reservation(2)],
        )
    ),
    "staffcall": encode(StaffCallState(call=str(uuid.uuid4()), state="open", at=T0)),
    "commands": sign(
        Ed25519PrivateKey.generate(),
        command_id=str(uuid.uuid4()),
        device="d1",
        name="door.unlock",
        args={"door": "room-a", "seconds": 10, "reason": "jammed card reader"},
        issued_by="staff:ops1",
        issued_at=T0,
        lifetime=timedelta(minutes=5),
    ),
}


def _paths(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*at, index))


def _mutate(base: Any, path: tuple[Any, ...], op: str, new: Any, key: str) -> Any:
    doc = copy.deepcopy(base)
    if not path:
        return new if op == "set" else doc
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if op == "delete":
        del parent[last]
    elif op == "add" and isinstance(parent, dict):
        parent[key] = new
    elif op == "add":
        parent.append(new)
    else:
        parent[last] = new
    return doc


def wrong_json(valid: bytes) -> st.SearchStrategy[bytes]:
    """The valid payload with one value replaced, removed or added."""
    base = json.loads(valid)
    paths = list(_paths(base))
    return st.builds(
        lambda p, op, new, key: json.dumps(_mutate(base, p, op, new, key)).encode(),
        st.sampled_from(paths),
        st.sampled_from(["set", "delete", "add"]),
        JSON | EDGES,
        st.text(max_size=6),
    )


def payloads(valid: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=300),
        JSON.map(lambda v: json.dumps(v).encode()),
        wrong_json(valid),
        wrong_json(valid),
    )
