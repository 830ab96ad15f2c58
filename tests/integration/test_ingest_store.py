"""IngestStore on SQLite and PostgreSQL: what goes in comes out unchanged
(the PostgreSQL insert sends the rows as one JSON document), in seq order,
once; refused content is quarantined and still acked."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import select

from central.db.engine import Database
from central.db.tables import event_quarantine, events
from central.ingest.store import IngestStore
from contracts.mqtt import EventBatch

T0 = datetime(2026, 4, 1, 9, 0, 0, 123000, tzinfo=timezone(timedelta(hours=9)))
# Text the JSON splice must carry as it is: quotes, backslashes, control
# characters, non-ASCII, nesting, numbers of every kind.
TRICKY = {
    "door": 'room-"a"\\b\n\t',
    "label": "受付 ☂ \u2028",
    "nested": {"list": [1, 2.5, -3e-7, True, None, "x"], "empty": {}},
    "big": 2**62,
}


def batch(device: str, seqs: list[int], data: dict[str, object]) -> EventBatch:
    return EventBatch.model_validate({
        "device": device,
        "events": [{"id": str(uuid.uuid4()), "seq": s, "type": "door.opened", "at": T0,
                    "clock_trusted": s % 2 == 0, "data": data} for s in seqs],
    })  # fmt: skip


def test_ingest_store_keeps_data_order_and_stores_each_event_once(central_db: Database) -> None:
    store = IngestStore(central_db, "w1")
    first = batch("dev-b", [3, 1, 2], TRICKY)
    second = batch("dev-a", [1, 2], {"n": 1})
    outcome = store.store_batches([first, second])
    assert outcome.stored == 5 and outcome.duplicates == 0
    assert sorted(outcome.acks) == ["dev-a", "dev-b"]

    again = store.store_batches([first])
    assert again.stored == 0 and again.duplicates == 3
    assert again.acks == {"dev-b": [e.id for e in first.events]}

    with central_db.read() as conn:
        got = conn.execute(select(events).order_by(events.c.pk)).all()
    # In (device, seq) order, whatever the order received.
    assert [(r.device, r.seq) for r in got] == [
        ("dev-a", 1), ("dev-a", 2), ("dev-b", 1), ("dev-b", 2), ("dev-b", 3)]  # fmt: skip
    by_id = {r.event_id: r for r in got}
    for ev in first.events:
        row = by_id[ev.id]
        assert row.data == TRICKY
        assert row.clock_trusted is ev.clock_trusted
        assert row.at == ev.at.astimezone(UTC).replace(tzinfo=None)
        assert row.worker == "w1"


def test_ingest_store_quarantines_refused_content_and_acks_it(central_db: Database) -> None:
    store = IngestStore(central_db, "w1")
    bad = [
        batch("dev-a", [1], {"value": float("nan")}),
        batch("dev-a", [2], {"pad": "x" * 20_000}),
        batch("dev-a", [3], {"card": "123456789012"}),
    ]
    good = batch("dev-a", [4], {"door": "room-a"})
    outcome = store.store_batches([*bad, good])
    assert (outcome.stored, outcome.quarantined) == (1, 3)
    reasons = sorted(e.reason for e in outcome.quarantined_events)
    assert any("NaN" in r for r in reasons) and any("exceeds" in r for r in reasons)
    assert len(outcome.acks["dev-a"]) == 4
    with central_db.read() as conn:
        kept = conn.execute(select(event_quarantine.c.seq, event_quarantine.c.envelope)).all()
    assert sorted(seq for seq, _ in kept) == [1, 2, 3]
    assert all(env["data_withheld"] and "data" not in env for _, env in kept)
