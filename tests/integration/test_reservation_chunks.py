"""Large but legitimate reservation data reaches a real device through a real
mosquitto running the generated limits (``max_packet_size``,
``max_queued_bytes``): a snapshot over 256 KiB goes in byte-bounded chunks,
and a bulk change whose live delta does not fit one packet is announced,
the device resyncs and ends with central's content (equal hashes)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from central.cli_common import open_db
from central.config import load_config
from central.db.engine import Database
from central.ingest.store import IngestStore
from central.reservations.publisher import DeltaPublisher
from central.reservations.store import ReservationStore
from contracts.mqtt import (
    MAX_PACKET_BYTES,
    MAX_PAYLOAD_BYTES,
    Reservation,
    ReservationChange,
    ReservationSnapshotChunk,
    ResyncRequest,
    decode,
    device_topic,
    encode,
)
from contracts.reservations_hash import active_hash
from sync.reservations import ReservationCache
from sync.store import open_store
from tests.harness.central import worker_thread, write_config
from tests.harness.mosquitto import Mosquitto
from tests.harness.mqtt import connect
from tests.harness.services import ServiceProcess, wait_until
from tests.harness.syncdev import agent_process, write_device_config

NOW = datetime.now(UTC).replace(microsecond=0)
# 32 references of 128 characters: about 4.6 KB per reservation encoded, so
# 80 of them make a 370 KB snapshot (and a 370 KB delta when made at once).
BULK = 80


def reservation(n: int) -> Reservation:
    return Reservation(
        id=f"bulk-{n:05d}",
        facility="fac-1",
        door="room-a",
        starts_at=NOW + timedelta(minutes=n),
        ends_at=NOW + timedelta(hours=2, minutes=n),
        credential_refs=[f"{n:05d}-{i:02d}-".ljust(128, "c") for i in range(32)],
    )


def bulk_import(store: ReservationStore, first: int) -> int:
    """``BULK`` reservations in one change batch (one version), like an import."""
    changes = [ReservationChange(op="upsert", reservation=reservation(n))
               for n in range(first, first + BULK)]  # fmt: skip
    with store.db.write() as conn:
        return store.apply(conn, "fac-1", changes).version


@pytest.fixture(scope="module")
def limited_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A mosquitto with the production limit lines at their defaults."""
    broker = Mosquitto(
        tmp_path_factory.mktemp("limited"),
        devices={"dev-a": "fac-1"},
        max_packet_bytes=MAX_PACKET_BYTES,
    )
    broker.start()
    assert "max_queued_bytes 67108864" in (broker.root / "mosquitto.conf").read_text()
    yield broker
    broker.stop()


@pytest.fixture
def central_db(tmp_path: Path) -> Iterator[tuple[str, ReservationStore]]:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    db = Database(url)
    IngestStore(db, "test").register_device("dev-a", "fac-1")  # provisioned
    yield url, ReservationStore(db)
    db.close()


@pytest.fixture
def agent(limited_broker: Mosquitto, tmp_path: Path) -> Iterator[tuple[ServiceProcess, Path]]:
    folder = tmp_path / "dev-a"
    config = write_device_config(limited_broker, folder, "dev-a", "fac-1")
    process = agent_process(config, folder / "agent.log")
    yield process, folder / "device.db"
    process.stop()


def converged(device_db: Path, store: ReservationStore, now: float) -> bool:
    """The device has central's version and the same active-window hash."""
    version, active = store.active_state("fac-1")
    with open_store(device_db) as device:
        cache = ReservationCache(device, "fac-1")
        return cache.version() == version and cache.active_hash(now) == active_hash(active, now)


def test_reservation_chunks_snapshot_over_256_kib_reaches_a_device(
    tmp_path: Path,
    limited_broker: Mosquitto,
    central_db: tuple[str, ReservationStore],
    agent: tuple[ServiceProcess, Path],
) -> None:
    url, store = central_db
    version = bulk_import(store, 0)  # one version of ~370 KB: a catch-up must be a snapshot
    for delta in store.unpublished():
        store.mark_published(delta.facility, delta.version)
    process, device_db = agent
    with worker_thread(write_config(tmp_path, limited_broker, url)) as worker:
        process.start()
        now = time.time()
        wait_until(lambda: converged(device_db, store, now), 30, "the device to converge")
        assert worker.counts["snapshots_sent"] >= 1
        assert worker.client.is_connected()  # never cut off by the broker
    assert version == 1
    with open_store(device_db) as device:
        assert ReservationCache(device, "fac-1").count() == BULK


def test_reservation_chunks_oversized_live_delta_makes_devices_resync(
    tmp_path: Path,
    limited_broker: Mosquitto,
    central_db: tuple[str, ReservationStore],
    agent: tuple[ServiceProcess, Path],
) -> None:
    url, store = central_db
    store.create(reservation(99_000))
    config_path = write_config(tmp_path, limited_broker, url)
    config = load_config(config_path)
    publisher_db = open_db(config)
    publisher = DeltaPublisher(ReservationStore(publisher_db), config.broker, "central-pub-test")
    process, device_db = agent
    try:
        with worker_thread(config_path):
            publisher.start()
            process.start()
            now = time.time()
            wait_until(lambda: converged(device_db, store, now), 30, "the first sync")
            bulk_import(store, 0)  # its live delta (~370 KB) does not fit one packet
            publisher.notify()
            wait_until(lambda: converged(device_db, store, now), 30, "a resync after the bulk")
            assert publisher.announced == 1
            store.create(reservation(99_001))  # the publisher is not stalled behind it
            publisher.notify()
            wait_until(lambda: converged(device_db, store, now), 30, "the next live delta")
            assert store.unpublished() == []
    finally:
        publisher.close()
        publisher_db.close()
    with open_store(device_db) as device:
        assert ReservationCache(device, "fac-1").count() == BULK + 2


def test_reservation_chunks_long_correlation_data_cannot_cut_central_off(
    tmp_path: Path, limited_broker: Mosquitto, central_db: tuple[str, ReservationStore]
) -> None:
    """The attack: a device asks for a resync with 20 KB of correlation data,
    which central copies into every answer; with full 256 KiB chunks each
    answer would exceed the broker's packet limit and the broker would
    disconnect central's ingest worker (for every device) at each request."""
    url, store = central_db
    bulk_import(store, 0)
    device = connect(limited_broker, limited_broker.identity("dev-a"))
    answers = device_topic("dev-a", "reservations")
    try:
        with worker_thread(write_config(tmp_path, limited_broker, url)) as worker:
            device.subscribe(answers)
            # The broker handles a client's packets in order: subscribed once this PUBACK is back.
            assert device.publish(device_topic("dev-a", "commands"), b"probe") == 0x87
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.CorrelationData = b"c" * 20_000
            request = encode(ResyncRequest(facility="fac-1", from_version=0))
            device.client.publish(device_topic("dev-a", "requests"), request, qos=1,
                                  properties=props)  # fmt: skip
            chunks: list[ReservationSnapshotChunk] = []
            while not chunks or len(chunks) < chunks[0].chunks:
                message = device.next_message(15)
                assert message.topic == answers
                assert getattr(message.properties, "CorrelationData", None) is None
                assert len(message.payload) <= MAX_PAYLOAD_BYTES
                chunks.append(decode(ReservationSnapshotChunk, bytes(message.payload)))
            assert len(chunks) > 1 and sum(len(c.reservations) for c in chunks) == BULK
            assert worker.client.is_connected()
    finally:
        device.close()
