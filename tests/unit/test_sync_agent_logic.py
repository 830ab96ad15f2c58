"""Pure parts of the sync agent: backoff, batching, the batch encoding."""

from __future__ import annotations

import random
from pathlib import Path

from contracts import mqtt as protocol
from contracts.mqtt import EventBatch
from sync.agent import MAX_BATCH_BYTES, backoff_delay, encode_batch, split_batches
from sync.outbox import NewEvent, Outbox
from sync.store import open_store


def test_backoff_delay_grows_is_jittered_and_capped() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(n, 0.5, 30, rng) for n in range(12)]
    assert 0.25 <= delays[0] <= 0.5
    assert all(d <= 30 for d in delays)
    assert delays[-1] >= 15  # capped ceiling reached, jitter keeps it in [cap/2, cap]
    assert len({round(backoff_delay(10, 0.5, 30, rng), 6) for _ in range(20)}) > 1
    assert backoff_delay(10_000, 0.5, 30, rng) <= 30


def test_encode_batch_is_a_valid_event_batch(tmp_path: Path) -> None:
    with open_store(tmp_path / "d.db") as store:
        outbox = Outbox(store, clock_trusted=lambda: False)
        outbox.append_many(NewEvent("door.unlocked", {"door": "a", "n": i}) for i in range(3))
        events = outbox.pending()
    batch = protocol.decode(EventBatch, encode_batch("dev-a", events))
    assert batch.device == "dev-a"
    assert [e.seq for e in batch.events] == [1, 2, 3]
    assert batch.events[0].data == {"door": "a", "n": 0}
    assert batch.events[0].clock_trusted is False


def test_split_batches_keeps_order_and_payload_limit(tmp_path: Path) -> None:
    with open_store(tmp_path / "d.db") as store:
        outbox = Outbox(store)
        outbox.append_many(NewEvent("test.big", {"blob": "x" * 7000}) for _ in range(100))
        events = outbox.pending(limit=100)
    batches = split_batches(events)
    assert len(batches) > 1
    assert [e.seq for b in batches for e in b] == [e.seq for e in events]
    for batch in batches:
        payload = encode_batch("dev-a", batch)
        assert len(payload) <= MAX_BATCH_BYTES
        protocol.decode(EventBatch, payload)
