"""Hypothesis at the MQTT input boundary, central's side and the device's:
arbitrary bytes and structured-but-wrong JSON on every topic either parse or
are refused with :class:`~contracts.mqtt.ProtocolError` (central) or counted
as rejected (device); no exception escapes, and valid messages around them
are still taken. Real SQLite store files; no broker (see
tests/integration/test_mqtt_fuzz.py for the same through mosquitto)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from central.config import parse_config as parse_central_config
from central.db.engine import Database
from central.db.tables import events
from central.ingest.parse import parse_inbound
from central.ingest.store import refusal
from central.ingest.worker import Inbound, IngestWorker
from contracts.commands import DeviceCommand
from contracts.mqtt import (
    Ack,
    EventEnvelope,
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
from sync.agent import Agent
from sync.config import parse_config as parse_device_config
from tests.harness.fuzz_payloads import (
    CENTRAL_VALID,
    DEVICE_VALID,
    EDGES,
    JSON,
    T0,
    event_batch,
    payloads,
    reservation,
)

FUZZ = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Examples that write a real SQLite file: fewer, to keep the unit tier quick.
STORE_FUZZ = settings(FUZZ, max_examples=50)

# central ---------------------------------------------------------------------

CENTRAL_KINDS = ["events", "status", "health", "requests", "acks", "commands"]


@FUZZ
@given(st.data())
def test_mqtt_fuzz_central_parse_refuses_or_parses(data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(CENTRAL_KINDS))
    payload = data.draw(payloads(CENTRAL_VALID.get(kind, CENTRAL_VALID["events"])))
    try:
        parsed = parse_inbound(device_topic("dev-a", kind), payload)
    except ProtocolError as exc:
        assert str(exc)
        return
    assert (parsed.device, parsed.kind) == ("dev-a", kind)


@FUZZ
@given(st.text(max_size=80), st.binary(max_size=40))
def test_mqtt_fuzz_central_parse_any_topic(topic: str, payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_inbound(topic, payload) if "devices/" not in topic else parse_inbound(
            topic + "/\x00", payload
        )


@FUZZ
@given(st.dictionaries(st.text(max_size=10), JSON | EDGES, max_size=6))
def test_mqtt_fuzz_quarantine_decision_never_raises(data: dict[str, Any]) -> None:
    envelope = EventEnvelope(
        id=str(uuid.uuid4()), seq=1, type="door.opened", at=T0, clock_trusted=True, data=data
    )
    reason = refusal(envelope)
    assert reason is None or isinstance(reason, str)


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[IngestWorker]:
    config = parse_central_config(
        f'[database]\nurl = "sqlite:///{tmp_path / "central.db"}"\n'
        '[broker]\nhost = "127.0.0.1"\nport = 1\n',
        "fuzz.toml",
        tmp_path,
    )
    db = Database(config.database.url)
    yield IngestWorker(config, db)  # never connected: its acks go nowhere
    db.close()


def stored(worker: IngestWorker) -> set[str]:
    with worker.store.db.read() as conn:
        return {r[0] for r in conn.execute(select(events.c.event_id))}


@STORE_FUZZ
@given(st.data())
def test_mqtt_fuzz_central_worker_keeps_the_valid_rest(
    worker: IngestWorker, data: st.DataObject
) -> None:
    kinds = data.draw(st.lists(st.sampled_from(CENTRAL_KINDS[:4]), min_size=1, max_size=4))
    bad = [
        Inbound(device_topic("dev-a", k), data.draw(payloads(CENTRAL_VALID[k])), 1, 1, None)
        for k in kinds
    ]
    seq = data.draw(st.integers(min_value=1, max_value=10**6))
    honest = event_batch("dev-a", [seq])
    good = Inbound(device_topic("dev-a", "events"), encode(honest), 2, 1, None)
    position = data.draw(st.integers(min_value=0, max_value=len(bad)))
    worker._process([*bad[:position], good, *bad[position:]])
    assert worker.counts["internal_errors"] == worker.counts["db_errors"] == 0
    assert honest.events[0].id in stored(worker)
    with worker.store.db.read() as conn:  # what was stored can be served as JSON
        for (row,) in conn.execute(select(events.c.data)):
            json.dumps(row, allow_nan=False)


def test_mqtt_fuzz_central_worker_logs_each_quarantined_event(
    worker: IngestWorker, caplog: pytest.LogCaptureFixture
) -> None:
    batch = event_batch("dev-a", [1, 2, 3], data=[{"name": "Yamada Taro"}, {"door": "a"},
                                                  {"n": 123456789012}])  # fmt: skip
    worker._process([Inbound(device_topic("dev-a", "events"), encode(batch), 1, 1, None)])
    lines = [r for r in caplog.records if r.getMessage() == "event quarantined"]
    assert [(r.seq, r.event_id) for r in lines] == [  # type: ignore[attr-defined]
        (1, batch.events[0].id),
        (3, batch.events[2].id),
    ]
    text = caplog.text + "".join(str(r.__dict__) for r in lines)
    assert "Yamada" not in text and "123456789012" not in text
    quarantined = worker.store.query_quarantine(device="dev-a")
    assert [q["seq"] for q in quarantined] == [1, 3]
    with worker.store.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 1


# the device ------------------------------------------------------------------


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    config = parse_device_config(
        '[device]\nid = "dev-a"\nfacility = "fac-1"\n[store]\npath = "device.db"\n',
        "fuzz.toml",
        tmp_path,
    )
    device = Agent(config)  # never connected
    yield device
    device.store.close()


def device_topics() -> dict[str, str]:
    topics = {
        k: device_topic("dev-a", k) for k in ("acks", "reservations", "staffcall", "commands")
    }
    return {**topics, "facility": facility_reservations_topic("fac-1")}


@STORE_FUZZ
@given(st.data())
def test_mqtt_fuzz_device_rejects_bad_payloads_and_keeps_the_valid_rest(
    agent: Agent, data: st.DataObject
) -> None:
    kind = data.draw(st.sampled_from(sorted(device_topics())))
    payload = data.draw(payloads(DEVICE_VALID[kind]))
    before = agent.counters["rejected_messages"]
    agent._handle_message(device_topics()[kind], payload)  # must not raise
    assert agent.counters["rejected_messages"] in (before, before + 1)
    assert agent.counters["internal_errors"] == 0
    # A valid live delta that follows the cache's version is applied after it.
    version = agent.cache.version()
    follow = ReservationDelta(
        facility="fac-1",
        prev_version=version,
        version=version + 1,
        changes=[ReservationChange(op="upsert", reservation=reservation(9))],
    )
    agent._handle_message(device_topics()["facility"], encode(follow))
    assert agent.cache.version() == version + 1


@FUZZ
@given(st.sampled_from(sorted(DEVICE_VALID)), st.data())
def test_mqtt_fuzz_device_contract_decode_refuses_cleanly(kind: str, data: st.DataObject) -> None:
    models: dict[str, type[Any]] = {
        "acks": Ack,
        "facility": ReservationDelta,
        "reservations": ReservationSnapshotChunk,
        "staffcall": StaffCallState,
        "commands": DeviceCommand,
    }
    payload = data.draw(payloads(DEVICE_VALID[kind]))
    try:
        decode(models[kind], payload)
    except ProtocolError as exc:
        assert str(exc)


@pytest.mark.parametrize("value", [2**63, 10**30, -(2**63)])
def test_mqtt_fuzz_central_refuses_integers_beyond_64_bits(
    worker: IngestWorker, value: int
) -> None:
    """Found by the fuzzing: a seq no column can hold made the commit raise
    outside the worker's guard (the ingest process died; the device resent it)."""
    poison = json.loads(CENTRAL_VALID["events"])
    poison["events"][0]["seq"] = value
    honest = event_batch("dev-a", [7])
    worker._process(
        [
            Inbound(device_topic("dev-a", "events"), json.dumps(poison).encode(), 1, 1, None),
            Inbound(device_topic("dev-a", "events"), encode(honest), 2, 1, None),
        ]
    )
    assert worker.counts["malformed"] == 1
    assert stored(worker) == {honest.events[0].id}


@pytest.mark.parametrize("value", [2**63, 10**30])
def test_mqtt_fuzz_device_refuses_versions_beyond_64_bits(agent: Agent, value: int) -> None:
    """Found by the fuzzing: such a version crashed the agent's loop in SQLite."""
    for kind, field in (("facility", "version"), ("reservations", "version")):
        poison = json.loads(DEVICE_VALID[kind])
        poison[field] = value
        agent._handle_message(device_topics()[kind], json.dumps(poison).encode())
    assert agent.counters["rejected_messages"] == 2
    assert agent.counters["internal_errors"] == 0
    assert agent.cache.version() == 0


def test_mqtt_fuzz_central_refuses_nan_and_infinity(worker: IngestWorker) -> None:
    """Found by the fuzzing: NaN in event data was stored, and every later
    GET /api/events page holding it would fail (NaN is not JSON)."""
    health = CENTRAL_VALID["health"].replace(b'"uptime_s":null', b'"uptime_s":NaN')
    batch = CENTRAL_VALID["events"].replace(b'"door":"room-a"', b'"door":Infinity', 1)
    worker._process(
        [
            Inbound(device_topic("dev-a", "health"), health, 1, 0, None),
            Inbound(device_topic("dev-a", "events"), batch, 2, 1, None),
        ]
    )
    assert worker.counts["malformed"] == 1  # the health report
    assert worker.counts["events_quarantined"] == 1
    (row,) = worker.store.query_quarantine()
    assert row["reason"] == "data holds NaN or Infinity"
