"""The device sync agent (a real `python -m sync run` process) against the
real central ingest worker, through mosquitto with mutual TLS and the fleet
ACL: events end up in central's database exactly once and leave the outbox;
on connect the device catches up from central's change log, and its reported
hash agrees with central's, so no anti-entropy snapshot follows; live
deltas published from central's change log are applied."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from central.db.engine import Database
from central.db.tables import events
from central.ingest.worker import IngestWorker
from central.reservations.store import ReservationStore
from contracts import mqtt as protocol
from contracts.mqtt import Health, Reservation
from contracts.reservations_hash import same_content
from sync.outbox import Outbox
from sync.reservations import ReservationCache
from sync.store import open_store
from tests.harness.central import worker_thread, write_config
from tests.harness.mosquitto import Mosquitto
from tests.harness.mqtt import connect
from tests.harness.services import ServiceProcess, wait_until
from tests.harness.syncdev import agent_process, write_device_config

T0 = datetime.now(UTC).replace(second=0, microsecond=0)


def booking(n: int) -> Reservation:
    return Reservation(
        id=f"r{n}",
        facility="fac-1",
        door="room-a",
        starts_at=T0 + timedelta(hours=n),
        ends_at=T0 + timedelta(hours=n + 1),
        credential_refs=[f"cred-{n}"],
    )


@pytest.fixture(params=["deltas", "snapshot"])
def central(
    request: pytest.FixtureRequest, tmp_path: Path, fresh_mosquitto: Mosquitto
) -> Iterator[tuple[IngestWorker, ReservationStore, Database]]:
    """Central with 7 versions; for "snapshot" its change log keeps only 3,
    so a device at version 0 must be answered with a (chunked) snapshot."""
    url = f"sqlite:///{tmp_path / 'central.db'}"
    db = Database(url)
    keep = 3 if request.param == "snapshot" else 10000
    store = ReservationStore(db, keep_versions=keep)
    for n in range(1, 8):
        store.create(booking(n))
        for delta in store.unpublished():
            store.mark_published(delta.facility, delta.version)
    extra = f"[reservations]\nsnapshot_chunk_size = 3\nchangelog_keep_versions = {keep}\n"
    with worker_thread(write_config(tmp_path, fresh_mosquitto, url, extra=extra)) as worker:
        worker.store.register_device("dev-a", "fac-1")  # provisioned
        yield worker, store, db
    db.close()


@pytest.fixture
def agent(fresh_mosquitto: Mosquitto, tmp_path: Path) -> Iterator[tuple[ServiceProcess, Path]]:
    folder = tmp_path / "dev-a"
    config = write_device_config(fresh_mosquitto, folder, "dev-a", "fac-1")
    with open_store(folder / "device.db") as store:
        outbox = Outbox(store, clock_trusted=lambda: True)
        for n in range(500):
            outbox.append("door.unlocked", {"door": "room-a", "n": n})
    process = agent_process(config, folder / "agent.log")
    process.start()
    yield process, folder / "device.db"
    process.stop()


def device_view(db: Path) -> tuple[int, str, int]:
    with open_store(db) as store:
        cache = ReservationCache(store, "fac-1")
        return cache.version(), cache.active_hash(time.time()), Outbox(store).depth()


def agrees(store: ReservationStore, device_db: Path) -> bool:
    """Same version, and the device's hash matches central's data for the
    device's own window (central's check, robust to an hour boundary)."""
    version, active = store.active_state("fac-1")
    local_version, local_hash, _ = device_view(device_db)
    return local_version == version and same_content(local_hash, active)


def test_agent_with_central_ingest_events_catch_up_and_hash(
    central: tuple[IngestWorker, ReservationStore, Database],
    agent: tuple[ServiceProcess, Path],
    fresh_mosquitto: Mosquitto,
    request: pytest.FixtureRequest,
) -> None:
    worker, store, db = central
    process, device_db = agent

    def stored() -> int:
        with db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(events)).scalar() or 0)

    wait_until(lambda: stored() == 500 and device_view(device_db)[2] == 0, 60, "events stored")
    wait_until(lambda: agrees(store, device_db), 30, "catch-up applied, hashes agree")
    assert worker.counts["resync_requests"] >= 1
    snapshots = worker.counts["snapshots_sent"]
    pruned = store.deltas_since("fac-1", 0) is None
    assert pruned == (request.node.callspec.params["central"] == "snapshot")
    assert snapshots == (1 if pruned else 0)

    # Live: a change at central, published on the facility topic the way
    # central's publisher does, reaches the device.
    store.cancel("r2")
    publisher = connect(fresh_mosquitto, fresh_mosquitto.identity("central"))
    try:
        for delta in store.unpublished():
            publisher.publish(protocol.facility_reservations_topic("fac-1"), protocol.encode(delta))
            store.mark_published(delta.facility, delta.version)
        wait_until(lambda: agrees(store, device_db), 15, "delta applied, hashes agree")
        version, active = store.active_state("fac-1")
        # The device's health carries the same hash: no anti-entropy snapshot.
        publisher.subscribe("kiosk/v1/devices/dev-a/health", qos=0)
        message = publisher.next_message(10)
        health = protocol.decode(Health, bytes(message.payload))
        assert health.reservation_version == version
        assert health.reservation_hash and same_content(health.reservation_hash, active)
        wait_until(lambda: worker.counts["health"] >= 2, 10, "health ingested")
        assert worker.counts["snapshots_sent"] == snapshots
    finally:
        publisher.close()
    assert process.alive()
