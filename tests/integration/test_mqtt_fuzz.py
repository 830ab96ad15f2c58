"""A handful of hypothesis-made bad payloads through the real mosquitto (mutual
TLS, fleet ACL): to central's ingest worker from a device, and to the real
sync agent from central. Each is refused and counted, and the valid message
sent right after it is still taken. The many-example fuzzing of the same
parsers is in tests/unit/test_mqtt_payload_fuzz.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tests.harness.mqtt as harness_mqtt
from central.ingest.parse import parse_inbound
from central.ingest.worker import IngestWorker
from contracts.mqtt import (
    Ack,
    ProtocolError,
    ReservationChange,
    ReservationDelta,
    ReservationSnapshotChunk,
    StaffCallState,
    decode,
    device_topic,
    encode,
    facility_reservations_topic,
)
from sync.reservations import ReservationCache
from sync.store import open_store
from tests.harness.central import worker_thread, write_config
from tests.harness.fuzz_payloads import CENTRAL_VALID, DEVICE_VALID, event_batch, payloads
from tests.harness.fuzz_payloads import reservation as make_reservation
from tests.harness.mosquitto import Mosquitto
from tests.harness.mqtt import connect
from tests.harness.services import ServiceProcess, wait_until
from tests.harness.syncdev import agent_process, write_device_config

THROUGH_BROKER = settings(
    max_examples=8, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


def refused_by_central(kind: str, payload: bytes) -> bool:
    try:
        parse_inbound(device_topic("dev-a", kind), payload)
    except ProtocolError:
        return True
    return False


@pytest.fixture
def worker(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[IngestWorker]:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    with worker_thread(write_config(tmp_path, mosquitto, url, worker_id="fuzz")) as w:
        yield w


@pytest.fixture
def dev_a(mosquitto: Mosquitto) -> Iterator[harness_mqtt.TestClient]:
    client = connect(mosquitto, mosquitto.identity("dev-a"))
    client.subscribe(device_topic("dev-a", "acks"))
    yield client
    client.close()


@THROUGH_BROKER
@given(st.sampled_from(sorted(CENTRAL_VALID)), st.data())
def test_mqtt_fuzz_central_refuses_bad_payloads_through_the_broker(
    worker: IngestWorker, dev_a: harness_mqtt.TestClient, kind: str, data: st.DataObject
) -> None:
    payload = data.draw(payloads(CENTRAL_VALID[kind]))
    assume(refused_by_central(kind, payload))
    before = worker.counts["malformed"] + worker.counts["impersonation"]
    assert dev_a.publish(device_topic("dev-a", kind), payload) < 0x80
    honest = event_batch("dev-a", [1])
    dev_a.publish(device_topic("dev-a", "events"), encode(honest))
    message: Any = dev_a.next_message(10)
    assert decode(Ack, bytes(message.payload)).ids == [honest.events[0].id]
    after = worker.counts["malformed"] + worker.counts["impersonation"]
    assert after >= before + 1  # (other tests may have left a bad retained status)
    assert worker.counts["internal_errors"] == 0


@pytest.fixture
def central(mosquitto: Mosquitto) -> Iterator[harness_mqtt.TestClient]:
    client = connect(mosquitto, mosquitto.identity("central"))
    yield client
    client.close()


@pytest.fixture
def agent(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[tuple[ServiceProcess, Path]]:
    folder = tmp_path / "dev-a"
    process = agent_process(
        write_device_config(mosquitto, folder, "dev-a", "fac-1"), folder / "agent.log"
    )
    process.start()
    wait_until(lambda: '"connected to broker"' in process.log_tail(50), 15, "the agent")
    yield process, folder
    process.stop()


def version_of(db: Path) -> int:
    with open_store(db) as store:
        return ReservationCache(store, "fac-1").version()


DEVICE_TOPICS = {
    "acks": device_topic("dev-a", "acks"),
    "reservations": device_topic("dev-a", "reservations"),
    "staffcall": device_topic("dev-a", "staffcall"),
    "facility": facility_reservations_topic("fac-1"),
}


@THROUGH_BROKER
@given(st.sampled_from(sorted(DEVICE_TOPICS)), st.data())
def test_mqtt_fuzz_device_rejects_bad_payloads_through_the_broker(
    central: harness_mqtt.TestClient,
    agent: tuple[ServiceProcess, Path],
    kind: str,
    data: st.DataObject,
) -> None:
    process, folder = agent
    payload = data.draw(payloads(DEVICE_VALID[kind]))
    assume(payload and refused_by_device(kind, payload))
    db = folder / "device.db"
    log = folder / "agent.log"
    rejected = log.read_text().count('"message rejected"')
    central.publish(DEVICE_TOPICS[kind], payload, qos=1)
    wait_until(lambda: log.read_text().count('"message rejected"') > rejected, 10, "rejection")
    version = version_of(db)
    follow = ReservationDelta(
        facility="fac-1",
        prev_version=version,
        version=version + 1,
        changes=[ReservationChange(op="upsert", reservation=make_reservation(5))],
    )
    central.publish(DEVICE_TOPICS["facility"], encode(follow))
    wait_until(lambda: version_of(db) == version + 1, 10, "the valid delta after the bad payload")
    assert process.alive()
    assert '"message handling failed"' not in log.read_text()


def refused_by_device(kind: str, payload: bytes) -> bool:
    models: dict[str, Any] = {
        "acks": Ack,
        "facility": ReservationDelta,
        "staffcall": StaffCallState,
    }
    try:
        if kind == "reservations":  # the agent takes a delta or a snapshot chunk here
            for model in (ReservationDelta, ReservationSnapshotChunk):
                try:
                    decode(model, payload)
                    return False
                except ProtocolError:
                    continue
            return True
        decode(models[kind], payload)
    except ProtocolError:
        return True
    return False
