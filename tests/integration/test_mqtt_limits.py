"""Message size and memory limits through a real mosquitto (mutual TLS, ACL):
the broker's ``max_packet_size`` from deploy.fleet disconnects a device that
publishes more, central's CONNECT Maximum Packet Size keeps bigger packets
away from it, and the ingest queue stays within its byte bound while the
database is stalled, without losing a message."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from central.db.engine import Database
from central.db.tables import events
from central.ingest.store import IngestOutcome
from contracts.mqtt import MAX_PACKET_BYTES, Ack, EventBatch, decode, device_topic, encode
from deploy.fleet import add_device, init_fleet
from tests.harness.central import worker_thread, write_config
from tests.harness.fuzz_payloads import event_batch
from tests.harness.mosquitto import ClientIdentity, Mosquitto, start_fleet_broker
from tests.harness.mqtt import TestClient, connect
from tests.harness.services import wait_until

SMALL_LIMIT = 64 * 1024


def stored(db_url: str) -> int:
    with Database(db_url) as db, db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(events)).scalar_one())


def watch_disconnect(client: TestClient) -> queue.Queue[int]:
    reasons: queue.Queue[int] = queue.Queue()
    client.client.on_disconnect = lambda _c, _u, _f, reason, _p: reasons.put(reason.value)
    return reasons


def config_with(
    tmp_path: Path, broker: Mosquitto, db_url: str, *, max_packet: int, ingest: str = ""
) -> Path:
    path = write_config(tmp_path, broker, db_url, worker_id="limits", extra=ingest)
    text = path.read_text().replace(
        "reconnect_max_seconds = 2\n",
        f"reconnect_max_seconds = 2\nmax_packet_bytes = {max_packet}\n",
    )
    path.write_text(text)
    return path


@pytest.fixture
def small_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A mosquitto with the production limit line at a small value."""
    broker = Mosquitto(
        tmp_path / "mosquitto", devices={"dev-a": "fac-1"}, max_packet_bytes=SMALL_LIMIT
    )
    broker.start()
    yield broker
    broker.stop()


def test_mqtt_limits_generated_broker_disconnects_an_oversized_publish(tmp_path: Path) -> None:
    """The mosquitto.conf `deploy fleet init` writes refuses a packet over the
    default limit from a fleet device certificate before reading its payload."""
    root = tmp_path / "fleet"
    init_fleet(root, broker_host="localhost")
    folder = add_device(root, "gym-door-1", "gym", store_path=str(tmp_path / "device.db"))
    assert f"max_packet_size {MAX_PACKET_BYTES}" in (root / "broker/mosquitto.conf").read_text()
    broker, process = start_fleet_broker(root)
    try:
        ident = ClientIdentity(
            "gym-door-1", folder / "device.pem", folder / "device.key", folder / "ca.pem"
        )
        device = connect(broker, ident)
        reasons = watch_disconnect(device)
        device.client.publish(device_topic("gym-door-1", "events"), b"x" * (MAX_PACKET_BYTES * 4))
        assert reasons.get(timeout=10) >= 0x80  # cut off while still sending
        device.close()
        # A valid payload of the largest allowed size still goes through.
        device = connect(broker, ident)
        big = b"{" + b" " * (MAX_PACKET_BYTES - 9 * 1024) + b"}"
        assert device.publish(device_topic("gym-door-1", "events"), big) < 0x80
        device.close()
    finally:
        process.stop()


def test_mqtt_limits_oversized_publish_never_reaches_central(
    tmp_path: Path, small_broker: Mosquitto
) -> None:
    db_url = f"sqlite:///{tmp_path / 'central.db'}"
    config = config_with(tmp_path, small_broker, db_url, max_packet=SMALL_LIMIT)
    with worker_thread(config) as worker:
        attacker = connect(small_broker, small_broker.identity("dev-a"))
        reasons = watch_disconnect(attacker)
        attacker.client.publish(device_topic("dev-a", "events"), b"x" * (3 * 1024 * 1024))
        assert reasons.get(timeout=10) >= 0x80  # cut off while still sending
        attacker.close()
        # The device's next honest batch is stored and acked: the worker was never touched.
        device = connect(small_broker, small_broker.identity("dev-a"))
        device.subscribe(device_topic("dev-a", "acks"))
        honest = event_batch("dev-a", [1])
        assert device.publish(device_topic("dev-a", "events"), encode(honest)) == 0
        ack = decode(Ack, bytes(device.next_message(10).payload))
        device.close()
        assert ack.ids == [honest.events[0].id]
        assert worker.counts["received"] == 1
        assert worker._queue.peak_bytes < SMALL_LIMIT


def test_mqtt_limits_broker_keeps_packets_over_centrals_limit_from_it(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """Defence in depth: even a broker without a limit (the session broker)
    never sends central a packet over central's CONNECT Maximum Packet Size."""
    db_url = f"sqlite:///{tmp_path / 'central.db'}"
    config = config_with(tmp_path, mosquitto, db_url, max_packet=SMALL_LIMIT)
    with worker_thread(config) as worker:
        device = connect(mosquitto, mosquitto.identity("dev-a"))
        device.subscribe(device_topic("dev-a", "acks"))
        topic = device_topic("dev-a", "events")
        assert device.publish(topic, encode(event_batch("dev-a", [1], pad=12_000))) == 0
        big = event_batch("dev-a", range(2, 12), pad=12_000)  # about 120 KiB, not for central
        assert device.publish(topic, encode(big)) == 0
        honest = event_batch("dev-a", [12])
        assert device.publish(topic, encode(honest)) == 0
        acked: list[str] = []
        while honest.events[0].id not in acked:
            acked += decode(Ack, bytes(device.next_message(10).payload)).ids
        device.close()
        assert not {e.id for e in big.events} & set(acked)
        assert stored(db_url) == 2  # (received also counts other tests' retained statuses)
        assert worker._queue.peak_bytes < SMALL_LIMIT


def test_mqtt_limits_ingest_queue_stays_within_its_bytes_while_stalled(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    db_url = f"sqlite:///{tmp_path / 'central.db'}"
    bound = 64 * 1024
    config = config_with(
        tmp_path,
        mosquitto,
        db_url,
        max_packet=MAX_PACKET_BYTES,
        ingest=f"queue_max_bytes = {bound}\n",
    )
    with worker_thread(config) as worker:
        release = threading.Event()
        real_store = worker.store.store_batches

        def stalled(batches: Sequence[EventBatch]) -> IngestOutcome:
            release.wait(30)  # the database is stuck until the test lets go
            return real_store(batches)

        worker.store.store_batches = stalled  # type: ignore[method-assign]
        device = connect(mosquitto, mosquitto.identity("dev-a"))
        device.subscribe(device_topic("dev-a", "acks"))
        sent = [event_batch("dev-a", range(i * 10 + 1, i * 10 + 11), pad=1500) for i in range(30)]
        for b in sent:  # about 16 KiB each, 480 KiB in all: the broker holds the rest
            assert device.publish(device_topic("dev-a", "events"), encode(b)) == 0
        wait_until(lambda: worker.counts["backpressure"] >= 1, 10, "the queue to push back")
        assert worker._queue.peak_bytes <= bound
        release.set()
        expected = {e.id for b in sent for e in b.events}
        acked: set[str] = set()
        while not expected <= acked:
            message: Any = device.next_message(20)
            acked |= set(decode(Ack, bytes(message.payload)).ids)
        device.close()
        assert stored(db_url) == len(expected) == 300
        assert worker._queue.peak_bytes <= bound
        assert worker.counts["events_stored"] == 300
