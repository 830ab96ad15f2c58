"""Central ingest through a real mosquitto (mutual TLS, ACLs): idempotent
insert, ack only after commit, impersonation refused, bad payloads counted,
late wills ignored, and two worker processes sharing the load on PostgreSQL."""

from __future__ import annotations

import json
import queue
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from central.db.engine import Database
from central.db.tables import events
from central.ingest.worker import IngestWorker
from contracts.mqtt import Ack, EventBatch, Status, decode, device_topic, encode
from tests.harness.central import central_process, worker_thread, write_config
from tests.harness.mosquitto import Mosquitto
from tests.harness.mqtt import TestClient, connect
from tests.harness.services import ServiceProcess, wait_until

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


def batch(device: str, seqs: list[int] | range) -> EventBatch:
    return EventBatch.model_validate({
        "device": device,
        "events": [{"id": str(uuid.uuid4()), "seq": s, "type": "door.opened", "at": T0,
                    "clock_trusted": True, "data": {"door": "room-a"}} for s in seqs],
    })  # fmt: skip


def rows(db_url: str) -> list[tuple[str, int, str]]:
    with Database(db_url) as db, db.read() as conn:
        result = conn.execute(select(events.c.event_id, events.c.seq, events.c.worker))
        return [(r.event_id, r.seq, r.worker) for r in result]


def next_ack(device: TestClient, timeout: float = 10) -> Ack:
    message = device.next_message(timeout)
    assert message.topic.endswith("/acks"), message.topic
    return decode(Ack, bytes(message.payload))


def subscribed(proc: ServiceProcess) -> bool:
    return proc.check_alive() and '"subscribed"' in proc.log_tail(200)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'central.db'}"


@pytest.fixture
def worker(tmp_path: Path, mosquitto: Mosquitto, sqlite_url: str) -> Iterator[IngestWorker]:
    with worker_thread(write_config(tmp_path, mosquitto, sqlite_url, worker_id="w1")) as w:
        yield w


@pytest.fixture
def dev_a(mosquitto: Mosquitto) -> Iterator[TestClient]:
    client = connect(mosquitto, mosquitto.identity("dev-a"))
    client.subscribe(device_topic("dev-a", "acks"))
    yield client
    client.close()


def test_ingest_acks_only_committed_events_and_never_duplicates(
    worker: IngestWorker, dev_a: TestClient, sqlite_url: str
) -> None:
    first = batch("dev-a", [1, 2, 3])
    assert dev_a.publish(device_topic("dev-a", "events"), encode(first)) == 0
    ack = next_ack(dev_a)
    # The ack is published after the commit: the rows are there when it arrives.
    stored = {r[0] for r in rows(sqlite_url)}
    assert set(ack.ids) == {e.id for e in first.events} <= stored
    # A resend and out-of-order batches (6-7 before 4-5) are acked again, stored once.
    later, middle = batch("dev-a", [6, 7]), batch("dev-a", [4, 5])
    for b in (first, later, middle, later):
        dev_a.publish(device_topic("dev-a", "events"), encode(b))
    acked: list[str] = []
    while len(acked) < 9:  # batches committed together are acked together
        acked += next_ack(dev_a).ids
    assert len(acked) == 9
    ids = [r[0] for r in rows(sqlite_url)]
    assert len(ids) == len(set(ids)) == 7
    assert sorted(r[1] for r in rows(sqlite_url)) == [1, 2, 3, 4, 5, 6, 7]
    assert worker.counts["events_duplicate"] == 5
    (device,) = worker.store.list_devices()
    assert (device["contiguous_seq"], device["gaps"]) == (7, [])


def test_ingest_ack_waits_for_the_commit(
    worker: IngestWorker, dev_a: TestClient, sqlite_url: str
) -> None:
    blocker = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # central cannot commit while we hold this
    try:
        one = batch("dev-a", [1])
        dev_a.publish(device_topic("dev-a", "events"), encode(one))
        wait_until(lambda: worker.counts["received"] >= 1, 10, "the worker to receive the batch")
        with pytest.raises(queue.Empty):
            dev_a.next_message(timeout=1.0)
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    assert next_ack(dev_a).ids == [one.events[0].id]
    assert [r[0] for r in rows(sqlite_url)] == [one.events[0].id]


def test_ingest_refuses_a_device_publishing_as_another(
    worker: IngestWorker, dev_a: TestClient, mosquitto: Mosquitto, sqlite_url: str
) -> None:
    # The broker's ACL stops dev-a on dev-b's topic (MQTT v5 reason 0x87)...
    assert dev_a.publish(device_topic("dev-b", "events"), encode(batch("dev-b", [1]))) == 0x87
    # ...and central refuses a batch that names another device on dev-a's own topic.
    spoof = batch("dev-b", [1, 2])
    assert dev_a.publish(device_topic("dev-a", "events"), encode(spoof)) == 0
    honest = batch("dev-a", [1])
    dev_a.publish(device_topic("dev-a", "events"), encode(honest))
    assert next_ack(dev_a).ids == [honest.events[0].id]  # the first ack is the honest one
    assert worker.counts["impersonation"] == 1
    assert [r[0] for r in rows(sqlite_url)] == [honest.events[0].id]


def test_ingest_counts_bad_payloads_and_keeps_working(
    worker: IngestWorker, dev_a: TestClient, sqlite_url: str
) -> None:
    topic = device_topic("dev-a", "events")
    good = json.loads(encode(batch("dev-a", [1])))
    bad_payloads = [
        b"\xff\xfe not json",
        b"[1, 2, 3]",
        json.dumps({**good, "events": [{**good["events"][0], "seq": "one"}]}).encode(),
        json.dumps({**good, "events": []}).encode(),
        json.dumps({**good, "extra": 1}).encode(),
        b"{" + b" " * (300 * 1024) + b"}",  # over MAX_PAYLOAD_BYTES
    ]
    for payload in bad_payloads:
        assert dev_a.publish(topic, payload) == 0
    dev_a.publish(device_topic("dev-a", "health"), b'{"v": 1, "at": "yesterday"}')
    dev_a.publish(device_topic("dev-a", "requests"), b'{"v": 2}')
    honest = batch("dev-a", [1])
    dev_a.publish(topic, encode(honest))
    assert next_ack(dev_a).ids == [honest.events[0].id]
    wait_until(lambda: worker.counts["malformed"] >= len(bad_payloads) + 1, 10, "counts")
    assert worker.counts["malformed"] >= len(bad_payloads) + 1
    assert len(rows(sqlite_url)) == 1


def test_ingest_ignores_a_late_will_from_an_older_session(
    worker: IngestWorker, dev_a: TestClient
) -> None:
    status_topic = device_topic("dev-a", "status")
    try:
        dev_a.publish(status_topic, encode(Status(state="online", session=7)))
        dev_a.publish(status_topic, encode(Status(state="offline", session=6)))
        wait_until(lambda: worker.counts["status_stale"] >= 1, 10, "the stale will")
        (device,) = worker.store.list_devices()
        assert (device["status"], device["session"]) == ("online", 7)
        dev_a.publish(status_topic, encode(Status(state="offline", session=7)))
        wait_until(
            lambda: worker.store.list_devices()[0]["status"] == "offline", 10, "the real will"
        )
    finally:
        dev_a.client.publish(status_topic, b"", qos=1, retain=True).wait_for_publish(5)


def test_ingest_two_worker_processes_share_the_load_on_postgres(
    tmp_path: Path, mosquitto: Mosquitto, postgres_url: str
) -> None:
    workers = []
    for name in ("wa", "wb"):
        config = write_config(tmp_path, mosquitto, postgres_url, worker_id=name,
                              extra="[logging]\nlevel = \"INFO\"\n")  # fmt: skip
        proc = central_process(name, ["ingest", "--config", str(config)], tmp_path / f"{name}.log")
        proc.start()
        workers.append(proc)
    try:
        wait_until(lambda: all(subscribed(p) for p in workers), 30, "both workers to subscribe")
        sent: dict[str, EventBatch] = {}
        devices = {d: connect(mosquitto, mosquitto.identity(d)) for d in ("dev-a", "dev-b")}
        for d, client in devices.items():
            client.subscribe(device_topic(d, "acks"))
        for i in range(100):
            for d, client in devices.items():
                b = batch(d, range(i * 10 + 1, i * 10 + 11))
                sent[b.events[0].id] = b
                client.publish(device_topic(d, "events"), encode(b))
        # Resend a few batches: duplicates must not add rows.
        for b in list(sent.values())[:10]:
            devices[b.device].publish(device_topic(b.device, "events"), encode(b))
        expected = {e.id for b in sent.values() for e in b.events}
        wait_until(lambda: len(rows(postgres_url)) >= len(expected), 60, "all events stored")
        acked: set[str] = set()
        for d, client in devices.items():
            mine = {e.id for b in sent.values() if b.device == d for e in b.events}
            while not mine <= acked:
                acked |= set(next_ack(client).ids)
            client.close()
        stored = rows(postgres_url)
        assert len(stored) == len(expected) == 2000
        assert {r[0] for r in stored} == expected == acked
        per_worker = {w: sum(1 for r in stored if r[2] == w) for w in ("wa", "wb")}
        assert per_worker["wa"] > 0 and per_worker["wb"] > 0, per_worker
        with Database(postgres_url) as db, db.read() as conn:
            n = conn.execute(select(func.count(func.distinct(events.c.event_id)))).scalar()
        assert n == 2000
    finally:
        for proc in workers:
            proc.stop()


def test_ingest_worker_killed_mid_stream_loses_and_duplicates_nothing(
    tmp_path: Path, mosquitto: Mosquitto, sqlite_url: str
) -> None:
    config = write_config(tmp_path, mosquitto, sqlite_url, worker_id="k",
                          extra='[logging]\nlevel = "INFO"\n')  # fmt: skip

    def start_worker(n: int) -> ServiceProcess:
        proc = central_process(f"k{n}", ["ingest", "--config", str(config)], tmp_path / f"k{n}.log")
        proc.start()
        wait_until(lambda: subscribed(proc), 30, f"worker k{n} to subscribe")
        return proc

    first = start_worker(1)
    device = connect(mosquitto, mosquitto.identity("dev-a"))
    device.subscribe(device_topic("dev-a", "acks"))
    batches = [batch("dev-a", range(i * 50 + 1, i * 50 + 51)) for i in range(100)]
    expected = {e.id for b in batches for e in b.events}
    second: ServiceProcess | None = None
    try:
        for b in batches:
            device.client.publish(device_topic("dev-a", "events"), encode(b), qos=1)
        wait_until(lambda: len(rows(sqlite_url)) >= 1000, 30, "part of the stream stored")
        first.kill()  # SIGKILL: whatever was committed may not be acked yet
        acked: set[str] = set()
        while True:
            try:
                acked |= set(next_ack(device, timeout=0.5).ids)
            except queue.Empty:
                break
        second = start_worker(2)
        # The device resends what central did not confirm, as the agent does.
        for b in batches:
            if not {e.id for e in b.events} <= acked:
                device.client.publish(device_topic("dev-a", "events"), encode(b), qos=1)
        while not expected <= acked:
            acked |= set(next_ack(device).ids)
        stored = [r[0] for r in rows(sqlite_url)]
        assert len(stored) == len(set(stored)) == 5000
        assert set(stored) == expected
    finally:
        device.close()
        first.stop()
        if second is not None:
            second.stop()


def test_ingest_database_failure_means_no_ack_and_the_worker_goes_on(
    tmp_path: Path, mosquitto: Mosquitto, sqlite_url: str, dev_a: TestClient
) -> None:
    config = write_config(tmp_path, mosquitto, sqlite_url, worker_id="f")
    text = config.read_text().replace(
        f'url = "{sqlite_url}"', f'url = "{sqlite_url}"\nbusy_timeout_seconds = 0.2'
    )
    config.write_text(text)
    with worker_thread(config) as worker:
        blocker = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            lost = batch("dev-a", [1])
            assert dev_a.publish(device_topic("dev-a", "events"), encode(lost)) == 0
            wait_until(lambda: worker.counts["db_errors"] >= 3, 30, "three failed commits")
        finally:
            blocker.execute("COMMIT")
            blocker.close()
        # Never acked, so the device still has it and sends it again.
        dev_a.publish(device_topic("dev-a", "events"), encode(lost))
        assert next_ack(dev_a).ids == [lost.events[0].id]
        assert [r[0] for r in rows(sqlite_url)] == [lost.events[0].id]
