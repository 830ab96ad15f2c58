"""Reservation sync, device side, through a real mosquitto with the fleet ACL:
live deltas in order, gap -> resync request (MQTT v5 response topic and
correlation data), offline catch-up by snapshot, cancellations, bad payloads
counted and survived; and device confinement (MQTT v5 reason 0x87)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import tests.harness.mqtt as harness_mqtt
from contracts import mqtt as protocol
from contracts.mqtt import (
    Health,
    Reservation,
    ReservationChange,
    ReservationDelta,
    ReservationSnapshotChunk,
    ResyncRequest,
)
from sync.reservations import ReservationCache
from sync.store import open_store
from tests.harness.mosquitto import Mosquitto
from tests.harness.mqtt import connect
from tests.harness.services import ServiceProcess, wait_until
from tests.harness.syncdev import agent_process, write_device_config

NOT_AUTHORIZED = 0x87
FACILITY_TOPIC = "kiosk/v1/facilities/fac-1/reservations"
DEVICE_TOPIC = "kiosk/v1/devices/dev-a/reservations"
NOW = datetime.now(UTC).replace(microsecond=0)


def reservation(n: int, *, refs: tuple[str, ...] = (), hours: int = 1) -> Reservation:
    return Reservation(
        id=f"r{n}",
        facility="fac-1",
        door="room-a",
        starts_at=NOW + timedelta(hours=n % 5),
        ends_at=NOW + timedelta(hours=n % 5 + hours),
        credential_refs=list(refs or (f"cred-{n}",)),
    )


def delta(prev: int, version: int, *changes: tuple[str, Reservation]) -> bytes:
    message = ReservationDelta(
        facility="fac-1",
        prev_version=prev,
        version=version,
        changes=[ReservationChange(op=op, reservation=r) for op, r in changes],  # type: ignore[arg-type]
    )
    return protocol.encode(message)


def device_state(db: Path) -> tuple[int, dict[str, tuple[str, int]]]:
    with open_store(db) as store:
        cache = ReservationCache(store, "fac-1")
        rows = store.query("SELECT id, status, ends_at FROM reservations")
        return cache.version(), {r["id"]: (r["status"], r["ends_at"]) for r in rows}


def version_of(db: Path) -> int:
    return device_state(db)[0]


@pytest.fixture
def central(mosquitto: Mosquitto) -> Iterator[harness_mqtt.TestClient]:
    client = connect(mosquitto, mosquitto.identity("central"))
    client.subscribe("kiosk/v1/devices/dev-a/requests")
    client.subscribe("kiosk/v1/devices/dev-a/health", qos=0)
    yield client
    client.close()


@pytest.fixture
def device_dir(tmp_path: Path) -> Path:
    return tmp_path / "dev-a"


@pytest.fixture
def agent(mosquitto: Mosquitto, device_dir: Path) -> Iterator[ServiceProcess]:
    config = write_device_config(mosquitto, device_dir, "dev-a", "fac-1")
    process = agent_process(config, device_dir / "agent.log")
    process.start()
    yield process
    process.stop()


@dataclass(frozen=True)
class Reply:
    """Where and how to answer a request (MQTT v5 response topic + correlation data)."""

    topic: str
    correlation: bytes


def next_request(
    central: harness_mqtt.TestClient, timeout: float = 15
) -> tuple[ResyncRequest, Reply]:
    """The next resync request from dev-a (health messages are skipped)."""
    deadline = datetime.now(UTC) + timedelta(seconds=timeout)
    while datetime.now(UTC) < deadline:
        message = central.next_message(timeout)
        if message.topic.endswith("/requests"):
            props = message.properties
            reply = Reply(
                str(getattr(props, "ResponseTopic", "")),
                bytes(getattr(props, "CorrelationData", b"")),
            )
            return protocol.decode(ResyncRequest, bytes(message.payload)), reply
    raise AssertionError("no resync request")


def answer(central: harness_mqtt.TestClient, props: Reply, payload: bytes) -> None:
    reply: Any = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    reply.CorrelationData = props.correlation
    central.client.publish(props.topic, payload, qos=1, properties=reply)


def up_to_date(central: harness_mqtt.TestClient, props: Reply, version: int) -> None:
    """Central's answer when the device is current: an empty delta at its
    version, or at version 0 an empty one-chunk snapshot."""
    if version:
        answer(central, props, delta(version, version))
        return
    empty = ReservationSnapshotChunk(
        facility="fac-1", version=0, snapshot_id="empty", chunk=0, chunks=1, reservations=[]
    )
    answer(central, props, protocol.encode(empty))


def test_reservations_deltas_apply_in_order_with_cancel(
    central: harness_mqtt.TestClient, agent: ServiceProcess, device_dir: Path
) -> None:
    request, props = next_request(central)
    assert request.from_version == 0 and request.facility == "fac-1"
    assert props.topic == DEVICE_TOPIC and props.correlation
    db = device_dir / "device.db"
    moved = reservation(1, hours=2)
    central.publish(FACILITY_TOPIC, delta(0, 1, ("upsert", reservation(1))))
    central.publish(FACILITY_TOPIC, delta(1, 2, ("upsert", moved), ("upsert", reservation(2))))
    central.publish(FACILITY_TOPIC, delta(2, 3, ("cancel", reservation(2))))
    wait_until(lambda: version_of(db) == 3, 10, "version 3 on the device")
    _, rows = device_state(db)
    assert rows["r1"] == ("active", int(moved.ends_at.timestamp()))
    assert rows["r2"][0] == "cancelled"
    # An old delta delivered again changes nothing.
    central.publish(FACILITY_TOPIC, delta(0, 1, ("upsert", reservation(1, hours=9))))
    central.publish(FACILITY_TOPIC, delta(3, 4, ("upsert", reservation(4))))
    wait_until(lambda: version_of(db) == 4, 10, "version 4")
    assert device_state(db)[1]["r1"] == ("active", int(moved.ends_at.timestamp()))


def test_reservations_gap_triggers_resync_and_deltas_catch_up(
    central: harness_mqtt.TestClient, agent: ServiceProcess, device_dir: Path
) -> None:
    db = device_dir / "device.db"
    _, props = next_request(central)
    up_to_date(central, props, 0)
    central.publish(FACILITY_TOPIC, delta(0, 1, ("upsert", reservation(1))))
    wait_until(lambda: version_of(db) == 1, 10, "version 1")
    # Version 2 is lost; version 3 arrives: a gap.
    central.publish(FACILITY_TOPIC, delta(2, 3, ("upsert", reservation(3))))
    request, props = next_request(central)
    assert request.from_version == 1
    assert request.active_hash is not None and request.active_hash.startswith("v1:")
    assert version_of(db) == 1
    answer(central, props, delta(1, 2, ("upsert", reservation(2))))
    # The buffered live delta (3) follows the answer without a new request.
    wait_until(lambda: version_of(db) == 3, 10, "version 3 after the resync")
    assert set(device_state(db)[1]) == {"r1", "r2", "r3"}


def test_reservations_offline_device_catches_up_by_snapshot(
    mosquitto: Mosquitto, central: harness_mqtt.TestClient, device_dir: Path
) -> None:
    db = device_dir / "device.db"
    config = write_device_config(mosquitto, device_dir, "dev-a", "fac-1")
    with open_store(db) as store:
        ReservationCache(store, "fac-1").apply_snapshot(5, [reservation(n) for n in range(10)])
    # While the device was offline central moved to version 120; its change
    # log no longer reaches back to 5, so it answers with a snapshot.
    final = [reservation(n) for n in range(5, 305)]
    agent = agent_process(config, device_dir / "agent.log")
    agent.start()
    try:
        request, props = next_request(central)
        assert request.from_version == 5
        chunks = [final[i : i + 100] for i in range(0, len(final), 100)]
        for index, part in enumerate(chunks):
            chunk = ReservationSnapshotChunk(
                facility="fac-1",
                version=120,
                snapshot_id="snap-1",
                chunk=index,
                chunks=len(chunks),
                reservations=part,
            )
            answer(central, props, protocol.encode(chunk))
            if index == 0:
                # Atomic: nothing changes until the last chunk is in.
                assert version_of(db) == 5
        wait_until(lambda: version_of(db) == 120, 15, "snapshot applied")
        assert set(device_state(db)[1]) == {r.id for r in final}
        with open_store(db) as store:
            cache = ReservationCache(store, "fac-1")
            at = reservation(7).starts_at.timestamp() + 60
            assert [r.id for r in cache.lookup("cred-7", "room-a", at)] == ["r7"]
            assert cache.lookup("cred-2", "room-a", at) == []
    finally:
        agent.stop()


def test_reservations_bad_payloads_are_counted_and_survived(
    central: harness_mqtt.TestClient, agent: ServiceProcess, device_dir: Path
) -> None:
    db = device_dir / "device.db"
    _, props = next_request(central)
    up_to_date(central, props, 0)
    bad = [
        (FACILITY_TOPIC, b"\xff\xfe not json"),
        (FACILITY_TOPIC, b"{" + b" " * (300 * 1024) + b"}"),
        (FACILITY_TOPIC, json.dumps({"v": 1, "kind": "delta", "facility": 7}).encode()),
        (DEVICE_TOPIC, json.dumps({"v": 1, "kind": "snapshot", "chunk": -1}).encode()),
        (DEVICE_TOPIC, b"[]"),
        ("kiosk/v1/devices/dev-a/acks", json.dumps({"v": 1, "ids": "all"}).encode()),
        (FACILITY_TOPIC, delta(0, 1, ("upsert", reservation(1))).replace(b"fac-1", b"fac-9")),
    ]
    for topic, payload in bad:
        central.publish(topic, payload)
    central.publish(FACILITY_TOPIC, delta(0, 1, ("upsert", reservation(1))))
    wait_until(lambda: version_of(db) == 1, 10, "valid delta applied after the bad ones")
    assert agent.alive()

    def rejected() -> int:
        message = central.next_message(10)
        if not message.topic.endswith("/health"):
            return -1
        return protocol.decode(Health, bytes(message.payload)).rejected_messages or 0

    # The 300 KiB one never reaches the agent: its CONNECT carries
    # broker.max_packet_bytes, which the broker honours.
    wait_until(lambda: rejected() >= len(bad) - 1, 15, "rejections counted in health")
    log = (device_dir / "agent.log").read_text()
    assert log.count('"message rejected"') == len(bad) - 1
    assert '"bytes": 307202' not in log


def test_acl_device_cannot_publish_as_or_read_another_device(mosquitto: Mosquitto) -> None:
    dev_a = connect(mosquitto, mosquitto.identity("dev-a"))
    central = connect(mosquitto, mosquitto.identity("central"))
    try:
        for kind in ("events", "status", "health", "requests"):
            assert dev_a.publish(f"kiosk/v1/devices/dev-b/{kind}", "{}") == NOT_AUTHORIZED
        # What central sends a device, the device itself cannot forge.
        for kind in ("acks", "reservations", "commands", "staffcall"):
            assert dev_a.publish(f"kiosk/v1/devices/dev-a/{kind}", "{}") == NOT_AUTHORIZED
        assert dev_a.publish("kiosk/v1/facilities/fac-1/reservations", "{}") == NOT_AUTHORIZED
        dev_a.subscribe("kiosk/v1/devices/dev-b/#")
        dev_a.subscribe("kiosk/v1/facilities/fac-2/reservations")
        dev_a.subscribe("kiosk/v1/devices/dev-a/acks")
        dev_a.client.subscribe("kiosk/v1/devices/dev-a/acks")  # barrier: SUBACKs in order
        central.publish("kiosk/v1/devices/dev-b/acks", "secret-b")
        central.publish("kiosk/v1/facilities/fac-2/reservations", "secret-f2")
        central.publish("kiosk/v1/devices/dev-a/acks", "sentinel")
        received: list[mqtt.MQTTMessage] = []
        wait_until(
            lambda: _drain(dev_a, received) and any(m.payload == b"sentinel" for m in received),
            10,
            "the sentinel on dev-a's own topic",
        )
        assert [m.topic for m in received] == ["kiosk/v1/devices/dev-a/acks"]
    finally:
        dev_a.close()
        central.close()


def _drain(client: harness_mqtt.TestClient, into: list[mqtt.MQTTMessage]) -> bool:
    while not client.messages.empty():
        into.append(client.messages.get_nowait())
    return True
