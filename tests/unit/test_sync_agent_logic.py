"""Pure parts of the sync agent: backoff, batching, the batch encoding; its
window of batches with a recording stand-in for paho (the store is real)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from contracts import mqtt as protocol
from contracts.mqtt import Ack, EventBatch
from sync.agent import Agent
from sync.batches import MAX_BATCH_BYTES, backoff_delay, encode_batch, split_batches
from sync.config import parse_config
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


class RecordingClient:
    """Stands in for paho: records what the agent publishes."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    def publish(self, topic: str, payload: bytes, qos: int = 0, **_: object) -> None:
        self.published.append((topic, payload))


def connected_agent(folder: Path, batch_size: int, window: int) -> tuple[Agent, RecordingClient]:
    folder.mkdir(parents=True, exist_ok=True)
    config = parse_config(
        '[device]\nid = "dev-a"\nfacility = "fac-1"\n[store]\npath = "device.db"\n'
        f"[sync]\nbatch_size = {batch_size}\nmax_inflight_batches = {window}\n",
        "agent.toml",
        folder,
    )
    agent = Agent(config)
    client = RecordingClient()
    agent._client = client  # type: ignore[assignment]
    agent._connected = True
    return agent, client


def sent(client: RecordingClient) -> list[list[int]]:
    batches = [protocol.decode(EventBatch, p) for t, p in client.published if t.endswith("/events")]
    return [[e.seq for e in b.events] for b in batches]


def test_agent_window_sends_a_page_as_one_batch_and_splits_only_big_pages(
    tmp_path: Path,
) -> None:
    agent, client = connected_agent(tmp_path, batch_size=100, window=2)
    try:
        agent.outbox.append_many(NewEvent("door.unlocked", {"n": i}) for i in range(150))
        agent._fill_window()
        assert sent(client) == [list(range(1, 101)), list(range(101, 151))]
    finally:
        agent.store.close()

    big, client = connected_agent(tmp_path / "big", batch_size=40, window=1)
    try:
        big.outbox.append_many(NewEvent("test.big", {"blob": "x" * 7000}) for _ in range(40))
        big._fill_window()  # a page of about 280 KB: over 192 KiB, split in order
        seqs = sent(client)
        assert len(seqs) == 2 and seqs[0] + seqs[1] == list(range(1, 41))
        assert all(len(p) <= MAX_BATCH_BYTES for _, p in client.published)
    finally:
        big.store.close()


def test_agent_ack_refills_the_window_and_deletes_only_the_acked_events(
    tmp_path: Path,
) -> None:
    agent, client = connected_agent(tmp_path, batch_size=10, window=1)
    try:
        agent.outbox.append_many(NewEvent("door.unlocked", {"n": i}) for i in range(25))
        agent._fill_window()
        assert sent(client) == [list(range(1, 11))]
        first = [e.id for e in agent.outbox.pending(limit=10)]
        agent._handle_ack(protocol.encode(Ack(ids=first)))
        assert sent(client) == [list(range(1, 11)), list(range(11, 21))]
        assert agent.outbox.depth() == 15
        assert [e.seq for e in agent.outbox.pending(limit=100)] == list(range(11, 26))
    finally:
        agent.store.close()


def test_agent_prepares_the_next_pages_and_a_rewind_drops_them(tmp_path: Path) -> None:
    agent, client = connected_agent(tmp_path, batch_size=10, window=1)
    try:
        agent.outbox.append_many(NewEvent("door.unlocked", {"n": i}) for i in range(25))
        agent._fill_window()
        first = [e.id for e in agent.outbox.pending(limit=10)]
        agent._handle_ack(protocol.encode(Ack(ids=first)))
        assert [[e.seq for e in page] for page, _ in agent._ready] == [list(range(21, 26))]
        agent._rewind()  # a reconnect or ack timeout: from the oldest unconfirmed again
        assert sent(client)[-1] == list(range(11, 21))
        assert [[e.seq for e in page] for page, _ in agent._ready] == []
        second = [e.id for e in agent.outbox.pending(limit=10)]
        agent._handle_ack(protocol.encode(Ack(ids=second)))
        assert sent(client)[-1] == list(range(21, 26))
        assert agent.outbox.depth() == 5
    finally:
        agent.store.close()


def test_agent_ack_timeout_resends_one_batch_at_a_time_and_waits_longer(
    tmp_path: Path,
) -> None:
    agent, client = connected_agent(tmp_path, batch_size=10, window=3)
    try:
        agent.outbox.append_many(NewEvent("door.unlocked", {"n": i}) for i in range(45))
        agent._fill_window()
        assert sent(client) == [list(range(1, 11)), list(range(11, 21)), list(range(21, 31))]
        first_timeout = agent._pacer.timeout
        for batch in agent._batches.values():
            batch.deadline = 0.0  # central has not answered in time
        agent._tick()
        assert agent.counters["ack_timeouts"] == 1
        # Only the oldest batch goes again, with a longer deadline.
        assert sent(client)[3:] == [list(range(1, 11))]
        (resent,) = agent._batches.values()
        assert resent.sent_before
        assert resent.deadline - resent.sent_at == pytest.approx(2 * first_timeout)
        # Its late ack widens the window but says nothing about the round trip.
        agent._handle_ack(protocol.encode(Ack(ids=[e.id for e in agent.outbox.pending(10)])))
        assert agent._pacer.window == 2 and agent._pacer.timeout == 2 * first_timeout
        assert sent(client)[4:] == [list(range(11, 21)), list(range(21, 31))]
        ids = [e.id for e in agent.outbox.pending(20)]
        agent._handle_ack(protocol.encode(Ack(ids=ids)))
        # 31-40 was never sent: its quick ack ends the backoff.
        assert sent(client)[6:] == [list(range(31, 41)), list(range(41, 46))]
        agent._handle_ack(protocol.encode(Ack(ids=[e.id for e in agent.outbox.pending(10)])))
        assert agent._pacer.timeout == first_timeout
        assert agent._pacer.window == 3
    finally:
        agent.store.close()
