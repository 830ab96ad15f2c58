"""The device sync agent against a real mosquitto (mutual TLS + the fleet ACL)
and the test-only central responder: delivery, ack-before-delete, birth and
will, health, and exact counts across broker and process failures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import tests.harness.mqtt as harness_mqtt
from contracts import mqtt as protocol
from contracts.mqtt import Health, Status
from sync.outbox import NewEvent, Outbox
from sync.store import open_store
from tests.harness.mosquitto import Mosquitto
from tests.harness.mqtt import connect
from tests.harness.services import ServiceProcess, wait_until
from tests.harness.syncdev import CentralStub, agent_process, write_device_config


def fill_outbox(db: Path, count: int) -> set[str]:
    ids: set[str] = set()
    with open_store(db) as store:
        outbox = Outbox(store, clock_trusted=lambda: True)
        for start in range(0, count, 1000):
            n = min(1000, count - start)
            events = outbox.append_many(
                NewEvent("door.unlocked", {"door": "room-a", "n": start + i}) for i in range(n)
            )
            ids.update(e.id for e in events)
    return ids


def outbox_depth(db: Path) -> int:
    with open_store(db) as store:
        return Outbox(store).depth()


@pytest.fixture
def central(fresh_mosquitto: Mosquitto, tmp_path: Path) -> Iterator[CentralStub]:
    stub = CentralStub(fresh_mosquitto, tmp_path / "central").start()
    yield stub
    stub.stop()


@pytest.fixture
def device_dir(tmp_path: Path) -> Path:
    return tmp_path / "dev-a"


def start_agent(broker: Mosquitto, folder: Path, **sync: float) -> ServiceProcess:
    config = write_device_config(broker, folder, "dev-a", "fac-1", **sync)
    agent = agent_process(config, folder / "agent.log")
    agent.start()
    return agent


def assert_delivered_exactly(central: CentralStub, ids: set[str], db: Path) -> None:
    wait_until(lambda: central.count() >= len(ids), 120, f"{len(ids)} events at central")
    wait_until(lambda: outbox_depth(db) == 0, 60, "outbox drained")
    stored = {str(r[0]) for r in central.query("SELECT id FROM events")}
    assert stored == ids
    seqs = [int(str(r[0])) for r in central.query("SELECT seq FROM events ORDER BY seq")]
    assert seqs == list(range(1, len(ids) + 1))


def test_agent_delivers_and_deletes_only_after_ack(
    fresh_mosquitto: Mosquitto, central: CentralStub, device_dir: Path
) -> None:
    device_dir.mkdir(parents=True)
    ids = fill_outbox(device_dir / "device.db", 2000)
    watcher = connect(fresh_mosquitto, fresh_mosquitto.identity("central"))
    watcher.subscribe("kiosk/v1/devices/dev-a/status")
    watcher.subscribe("kiosk/v1/devices/dev-a/health")
    agent = start_agent(fresh_mosquitto, device_dir)
    try:
        assert_delivered_exactly(central, ids, device_dir / "device.db")
        seen: dict[str, bytes] = {}
        wait_until(
            lambda: _collect(watcher, seen) and {"status", "health"} <= seen.keys(),
            15,
            "birth and health",
        )
        birth = protocol.decode(Status, seen["status"])
        assert birth.state == "online" and birth.session >= 1
        health = protocol.decode(Health, seen["health"])
        assert health.outbox_depth is not None and health.store_bytes
        assert health.reservation_hash and health.reservation_hash.startswith("v1:")
        agent.stop()
        # Graceful stop publishes the retained "offline" with the same session.
        wait_until(
            lambda: (
                _collect(watcher, seen)
                and protocol.decode(Status, seen["status"]).state == "offline"
            ),
            10,
            "offline status",
        )
        assert protocol.decode(Status, seen["status"]).session == birth.session
    finally:
        agent.stop()
        watcher.close()


def _collect(client: object, seen: dict[str, bytes]) -> bool:
    assert isinstance(client, harness_mqtt.TestClient)
    while not client.messages.empty():
        message = client.messages.get_nowait()
        seen[message.topic.rsplit("/", 1)[1]] = bytes(message.payload)
    return True


TWENTY_THOUSAND = 20_000


def test_agent_exact_delivery_across_broker_restart(
    fresh_mosquitto: Mosquitto, central: CentralStub, device_dir: Path
) -> None:
    device_dir.mkdir(parents=True)
    ids = fill_outbox(device_dir / "device.db", TWENTY_THOUSAND)
    agent = start_agent(fresh_mosquitto, device_dir)
    try:
        wait_until(lambda: central.count() >= 3000, 60, "drain under way")
        fresh_mosquitto.restart()
        assert central.count() < TWENTY_THOUSAND, "drain finished before the restart"
        assert_delivered_exactly(central, ids, device_dir / "device.db")
        assert agent.alive()
        wait_until(lambda: "connected to broker" in agent.log_tail(200), 10, "reconnect logged")
        assert agent.log_tail(500).count('"connected to broker"') >= 2
    finally:
        agent.stop()


def test_agent_exact_delivery_across_broker_freeze(
    fresh_mosquitto: Mosquitto, central: CentralStub, device_dir: Path
) -> None:
    device_dir.mkdir(parents=True)
    ids = fill_outbox(device_dir / "device.db", TWENTY_THOUSAND)
    agent = start_agent(fresh_mosquitto, device_dir)
    try:
        wait_until(lambda: central.count() >= 3000, 60, "drain under way")
        fresh_mosquitto.freeze()
        try:
            wait_until(
                lambda: (
                    "no ack from central in time" in agent.log_tail(50)
                    or "broker unreachable" in agent.log_tail(50)
                ),
                30,
                "agent to notice the frozen broker",
            )
        finally:
            fresh_mosquitto.thaw()
        assert central.count() < TWENTY_THOUSAND
        assert_delivered_exactly(central, ids, device_dir / "device.db")
    finally:
        agent.stop()


def test_agent_exact_delivery_after_sigkill_mid_batch(
    fresh_mosquitto: Mosquitto, central: CentralStub, device_dir: Path
) -> None:
    device_dir.mkdir(parents=True)
    db = device_dir / "device.db"
    ids = fill_outbox(db, TWENTY_THOUSAND)
    agent = start_agent(fresh_mosquitto, device_dir)
    try:
        wait_until(lambda: central.count() >= 3000, 60, "drain under way")
        agent.kill()
        left = outbox_depth(db)
        assert 0 < left < TWENTY_THOUSAND
        agent = start_agent(fresh_mosquitto, device_dir)
        assert_delivered_exactly(central, ids, db)
    finally:
        agent.stop()


def test_agent_exact_delivery_when_central_dies_between_commit_and_ack(
    fresh_mosquitto: Mosquitto, device_dir: Path, tmp_path: Path
) -> None:
    device_dir.mkdir(parents=True)
    db = device_dir / "device.db"
    ids = fill_outbox(db, TWENTY_THOUSAND)
    central = CentralStub(fresh_mosquitto, tmp_path / "central").start(die_after_commits=30)
    agent = start_agent(fresh_mosquitto, device_dir)
    try:
        process = central.process
        assert process is not None
        wait_until(lambda: not process.alive(), 60, "central stub to die after a commit")
        committed = central.count()
        assert 0 < committed < TWENTY_THOUSAND
        # The last committed batch was never acked: those events are still queued.
        assert outbox_depth(db) > TWENTY_THOUSAND - committed
        central.start()
        assert_delivered_exactly(central, ids, db)
        delivered = int(str(central.query("SELECT n FROM deliveries")[0][0]))
        assert delivered > TWENTY_THOUSAND, "the unacked batch was not delivered again"
    finally:
        agent.stop()
        central.stop()


def test_agent_with_expired_certificate_retries_and_keeps_events(
    fresh_mosquitto: Mosquitto, central: CentralStub, device_dir: Path
) -> None:
    import datetime as dt

    from deploy import pki

    device_dir.mkdir(parents=True)
    ids = fill_outbox(device_dir / "device.db", 50)
    identity = fresh_mosquitto.identity("dev-a")
    expired = pki.issue(
        fresh_mosquitto.ca,
        "dev-a",
        not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=10),
        days=1,
    )
    expired.write(device_dir / "expired.pem", device_dir / "expired.key")
    config = write_device_config(fresh_mosquitto, device_dir, "dev-a", "fac-1")
    text = config.read_text()
    text = text.replace(str(identity.cert), str(device_dir / "expired.pem"))
    config.write_text(text.replace(str(identity.key), str(device_dir / "expired.key")))
    agent = agent_process(config, device_dir / "agent.log")
    agent.start()
    try:
        wait_until(
            lambda: agent.log_tail(100).count('"broker unreachable"') >= 3, 30, "retries logged"
        )
        assert agent.alive()
        assert '"device certificate is not valid now' in agent.log_tail(100)
        assert central.count() == 0
        assert outbox_depth(device_dir / "device.db") == len(ids)
    finally:
        agent.stop()
    assert '"connect_failures"' in agent.log_tail(5)
