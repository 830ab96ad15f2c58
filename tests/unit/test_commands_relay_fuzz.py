"""Central's command relay against fuzzed device answers (results, status):
every payload is refused and counted or applied, nothing escapes the relay's
thread, what is stored is a known state and JSON, and a personal-data
answer is withheld; an honest answer afterwards still applies. The relay is
never connected (SQLite file, no broker)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from central.commands import STATES, CommandService
from central.commands.relay import CommandRelay
from central.db.engine import Database
from contracts.commands import ResultState, result_payload
from contracts.mqtt import Status, device_topic, encode
from tests.harness.central_commands import register
from tests.harness.fuzz_payloads import payloads

# Examples write a real SQLite file: 50, the same every run.
FUZZ = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[tuple[CommandRelay, str]]:
    db = Database(f"sqlite:///{tmp_path / 'central.db'}")
    service = CommandService(db, Ed25519PrivateKey.generate())
    register(db, "dev-a", "hall")
    command_id = service.issue("dev-a", "config.reload", {}, issuer="staff:s", source="x")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    yield CommandRelay(service, client, lambda: None, lambda: None), command_id
    db.close()


def answer(command_id: str, state: ResultState, detail: dict[str, Any] | None = None) -> bytes:
    return result_payload(command_id=command_id, device="dev-a", name="config.reload",
                          state=state, code="ok", message="", at=datetime.now(UTC),
                          detail=detail)  # fmt: skip


@FUZZ
@given(st.data())
def test_commands_relay_fuzzed_answers_are_refused_or_applied(
    relay: tuple[CommandRelay, str], data: st.DataObject
) -> None:
    relay_, command_id = relay
    kind = data.draw(st.sampled_from(["results", "status"]))
    valid = answer(command_id, "delivered") if kind == "results" else encode(
        Status(state="online", session=1))  # fmt: skip
    relay_._received(device_topic("dev-a", kind), data.draw(payloads(valid)))  # must not raise
    row = relay_.service.get(command_id)
    assert row is not None and row["state"] in STATES
    json.dumps(row["detail"], allow_nan=False)


def test_commands_relay_withholds_personal_data_and_still_applies_honest_answers(
    relay: tuple[CommandRelay, str],
) -> None:
    relay_, command_id = relay
    relay_._received(device_topic("dev-a", "results"), b"\xff\xfe not json")
    assert relay_.counts["malformed"] == 1
    relay_._received(device_topic("dev-a", "results"),
                     answer(command_id, "done", detail={"name": "Yamada Taro"}))  # fmt: skip
    row = relay_.service.get(command_id)
    assert row is not None and row["state"] == "done"
    assert "Yamada" not in json.dumps(row["detail"]) and row["detail"] == {
        "withheld": "data.detail.name"}  # fmt: skip
