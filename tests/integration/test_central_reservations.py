"""Reservation sync, central side, through a real mosquitto: changes made via
the HTTP API (a real `python -m central serve` process) reach a device
subscribed to its facility topic in order; resync requests are answered with
deltas, or a chunked snapshot when the log is pruned or the hash disagrees."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from central.db.engine import Database
from central.ingest.worker import IngestWorker
from central.reservations.store import ReservationStore
from contracts.mqtt import (
    Health,
    Reservation,
    ReservationDelta,
    ReservationSnapshotChunk,
    ResyncRequest,
    decode,
    device_topic,
    encode,
    facility_reservations_topic,
)
from contracts.reservations_hash import active_hash, code_hash, facility_code_key
from tests.harness.central import ROOT, central_process, worker_thread, write_config
from tests.harness.keys import TEST_KEY, write_test_key
from tests.harness.mosquitto import Mosquitto
from tests.harness.mqtt import TestClient, connect
from tests.harness.services import free_port, wait_until

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


def subscribe_and_sync(client: TestClient, topic: str) -> None:
    """Subscribe, then a QoS 1 round trip: the broker handles a client's
    packets in order, so the subscription is active once the PUBACK is back."""
    client.subscribe(topic)
    # Any PUBACK will do, the ACL's refusal (0x87: a device may not write on
    # its commands topic) included; 0x10 = "no matching subscribers".
    assert client.publish(device_topic("dev-a", "commands"), b"probe") in (0, 0x10, 0x87)


def message_on(client: TestClient, topic: str, timeout: float = 10) -> mqtt.MQTTMessage:
    while True:
        message = client.next_message(timeout)
        if message.topic == topic:
            return message


def test_api_changes_reach_the_facility_topic_in_order(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    port = free_port()
    key = write_test_key(tmp_path / "credential.key")
    extra = f'[api]\nport = {port}\n[reservations]\ncode_key_file = "{key}"\n'
    config = write_config(tmp_path, mosquitto, f"sqlite:///{tmp_path / 'central.db'}", extra=extra)
    created = subprocess.run(
        [sys.executable, "-m", "central", "token", "create", "--role", "operator",
         "--config", str(config)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    headers = {"Authorization": f"Bearer {created.stdout.strip()}"}
    api = central_process("api", ["serve", "--config", str(config)], tmp_path / "api.log")
    device = connect(mosquitto, mosquitto.identity("dev-a"))
    topic = facility_reservations_topic("fac-1")
    subscribe_and_sync(device, topic)
    api.start()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: api.check_alive() and _up(base), 30, "the API to answer")
        with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
            slot = {"facility": "fac-1", "door": "room-a", "starts_at": T0.isoformat(),
                    "ends_at": (T0 + timedelta(hours=1)).isoformat()}  # fmt: skip
            r = http.post("/api/reservations", json={**slot, "id": "r1", "code": "4829"})
            assert r.status_code == 201, r.text
            assert http.patch("/api/reservations/r1", json={"door": "room-b"}).status_code == 200
            assert http.delete("/api/reservations/r1").status_code == 200
        deltas = [decode(ReservationDelta, bytes(message_on(device, topic).payload))
                  for _ in range(3)]  # fmt: skip
        assert [(d.prev_version, d.version) for d in deltas] == [(0, 1), (1, 2), (2, 3)]
        assert [d.changes[0].op for d in deltas] == ["upsert", "upsert", "cancel"]
        assert deltas[1].changes[0].reservation.door == "room-b"
        assert deltas[2].changes[0].reservation.status == "cancelled"
        stored = deltas[0].changes[0].reservation.code_hash
        # Under fac-1's own key, derived from the master central holds.
        assert stored == code_hash(facility_code_key(TEST_KEY, "fac-1"), "fac-1", "4829")
        assert stored != code_hash(TEST_KEY, "fac-1", "4829")
    finally:
        device.close()
        api.stop()


def _up(base: str) -> bool:
    try:
        return httpx.get(base + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def synced(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[tuple[IngestWorker, ReservationStore]]:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    extra = "[reservations]\nsnapshot_chunk_size = 2\nchangelog_keep_versions = 3\n"
    db = Database(url)
    store = ReservationStore(db, keep_versions=3)
    for i in range(1, 6):  # versions 1..5, published, so versions <= 2 are pruned
        store.create(Reservation(id=f"r{i}", facility="fac-1", door="room-a", starts_at=T0,
                                 ends_at=T0 + timedelta(hours=i)))  # fmt: skip
        for delta in store.unpublished():
            store.mark_published(delta.facility, delta.version)
    with worker_thread(write_config(tmp_path, mosquitto, url, extra=extra)) as worker:
        worker.store.register_device("dev-a", "fac-1")  # provisioned
        yield worker, store
    db.close()


def ask(device: TestClient, correlation: bytes, **request: Any) -> None:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ResponseTopic = device_topic("dev-a", "reservations")
    props.CorrelationData = correlation
    payload = encode(ResyncRequest(facility="fac-1", **request))
    device.client.publish(device_topic("dev-a", "requests"), payload, qos=1, properties=props)


def answer(device: TestClient) -> tuple[dict[str, Any], bytes | None]:
    message = message_on(device, device_topic("dev-a", "reservations"))
    props = getattr(message, "properties", None)
    correlation = getattr(props, "CorrelationData", None)
    return json.loads(message.payload), correlation


def snapshot(device: TestClient, correlation: bytes | None) -> list[ReservationSnapshotChunk]:
    chunks: list[ReservationSnapshotChunk] = []
    while not chunks or len(chunks) < chunks[0].chunks:
        raw, corr = answer(device)
        assert raw["kind"] == "snapshot" and corr == correlation
        chunks.append(ReservationSnapshotChunk.model_validate(raw))
    assert len({c.snapshot_id for c in chunks}) == 1
    assert sorted(c.chunk for c in chunks) == list(range(len(chunks)))
    return chunks


def test_resync_by_deltas_then_by_snapshot(
    synced: tuple[IngestWorker, ReservationStore], mosquitto: Mosquitto
) -> None:
    worker, _ = synced
    device = connect(mosquitto, mosquitto.identity("dev-a"))
    subscribe_and_sync(device, device_topic("dev-a", "reservations"))
    try:
        ask(device, b"req-1", from_version=3)
        raw, corr = answer(device)
        delta = ReservationDelta.model_validate(raw)
        assert corr == b"req-1"
        assert (delta.prev_version, delta.version) == (3, 5)
        assert [c.reservation.id for c in delta.changes] == ["r4", "r5"]

        ask(device, b"req-2", from_version=1)  # the log no longer has version 2
        chunks = snapshot(device, b"req-2")
        assert len(chunks) == 3 and {c.version for c in chunks} == {5}
        reservations = [r for c in chunks for r in c.reservations]
        assert sorted(r.id for r in reservations) == ["r1", "r2", "r3", "r4", "r5"]
        good_hash = active_hash(reservations, T0.timestamp())

        ask(device, b"req-3", from_version=5, active_hash=good_hash)
        raw, corr = answer(device)
        assert corr == b"req-3" and raw["changes"] == [] and raw["version"] == 5

        ask(device, b"req-4", from_version=5, active_hash="v1:wrong")
        assert {c.version for c in snapshot(device, b"req-4")} == {5}
        assert worker.counts["snapshots_sent"] == 2 and worker.counts["resync_deltas"] == 2
    finally:
        device.close()


def test_health_with_a_wrong_hash_forces_a_snapshot(
    synced: tuple[IngestWorker, ReservationStore], mosquitto: Mosquitto
) -> None:
    worker, store = synced
    worker.store.register_device("dev-a", "fac-1")
    device = connect(mosquitto, mosquitto.identity("dev-a"))
    subscribe_and_sync(device, device_topic("dev-a", "reservations"))
    try:
        version, active = store.active_state("fac-1")
        good = active_hash(active, T0.timestamp(), hours=48)
        healthy = Health(at=T0, reservation_version=version, reservation_hash=good)
        device.publish(device_topic("dev-a", "health"), encode(healthy))
        diverged = Health(at=T0, reservation_version=version, reservation_hash="v1:other")
        device.publish(device_topic("dev-a", "health"), encode(diverged))
        chunks = snapshot(device, None)
        assert active_hash([r for c in chunks for r in c.reservations], T0.timestamp(), 48) == good
        assert worker.counts["snapshots_sent"] == 1 and worker.counts["health"] == 2
    finally:
        device.close()


def test_resync_for_another_facility_is_refused(
    synced: tuple[IngestWorker, ReservationStore], mosquitto: Mosquitto
) -> None:
    worker, _ = synced
    worker.store.register_device("dev-a", "fac-1")
    device = connect(mosquitto, mosquitto.identity("dev-a"))
    subscribe_and_sync(device, device_topic("dev-a", "reservations"))
    try:
        payload = encode(ResyncRequest(facility="fac-2", from_version=0))
        device.publish(device_topic("dev-a", "requests"), payload)
        wait_until(lambda: worker.counts["wrong_facility"] == 1, 10, "the refusal")
        ask(device, b"ok", from_version=5)  # the worker goes on answering
        assert answer(device)[1] == b"ok"
    finally:
        device.close()


def test_resync_from_an_unregistered_device_is_refused(
    synced: tuple[IngestWorker, ReservationStore], mosquitto: Mosquitto
) -> None:
    """The attack: a valid fleet certificate central was never told about (a
    spare or stolen identity) asks for a facility's reservations. It gets no
    answer and is not registered; nothing reaches its reply topic."""
    worker, _ = synced
    intruder = connect(mosquitto, mosquitto.identity("dev-x"))
    reply = device_topic("dev-x", "reservations")
    intruder.subscribe(reply)  # active before its request: same connection, in order
    try:
        payload = encode(ResyncRequest(facility="fac-1", from_version=0))
        assert intruder.publish(device_topic("dev-x", "requests"), payload) in (0, 0x10)
        wait_until(lambda: worker.counts["unknown_device"] == 1, 10, "the refusal")
        assert worker.store.device_facility("dev-x") is None
        # A registered device's answer proves the worker has handled the
        # intruder's request (one worker thread, in order) and sent it nothing.
        device = connect(mosquitto, mosquitto.identity("dev-a"))
        try:
            subscribe_and_sync(device, device_topic("dev-a", "reservations"))
            ask(device, b"after", from_version=5)
            assert answer(device)[1] == b"after"
        finally:
            device.close()
        assert intruder.messages.empty()
    finally:
        intruder.close()
