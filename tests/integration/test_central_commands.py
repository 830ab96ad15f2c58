"""Remote commands at central with a real mosquitto and a real database
(SQLite and PostgreSQL): issue -> signed publish with response topic and
correlation data -> a test device answers -> state in the database and the
API; delivery on reconnection; expiry while offline; refusals audited."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import select

from central.api.app import create_app
from central.api.tokens import TokenStore
from central.commands import CommandRefused, CommandService
from central.commands.relay import CommandRelay
from central.db.engine import Database
from central.db.tables import audit_log, device_commands
from contracts.commands import FINAL_STATES, CommandResult, ResultState
from contracts.mqtt import device_topic
from tests.harness.booking import Clock
from tests.harness.central_commands import (
    DeviceClient,
    Received,
    device_client,
    register,
    start_relay,
    unique_device,
    write_signing_key,
)
from tests.harness.keys import fixed_code_key
from tests.harness.mosquitto import Mosquitto
from tests.harness.services import wait_until

UNLOCK = {"door": "main", "seconds": 10, "reason": "card reader jammed"}


@dataclass
class Rig:
    db: Database
    service: CommandService
    relay: CommandRelay
    key: Ed25519PrivateKey
    clock: Clock
    broker: Mosquitto

    def state(self, command_id: str) -> str:
        row = self.service.get(command_id)
        assert row is not None
        return str(row["state"])

    def wait_state(self, command_id: str, state: str, timeout: float = 10) -> None:
        wait_until(lambda: self.state(command_id) == state, timeout, f"command {state}")

    def device(self, device: str) -> DeviceClient:
        return device_client(self.broker, device, self.key)


@pytest.fixture
def rig(central_db: Database, mosquitto: Mosquitto, tmp_path: Path) -> Iterator[Rig]:
    _, key = write_signing_key(tmp_path / "keys")
    clock = Clock(datetime.now(UTC))
    service = CommandService(central_db, key, max_unlock_seconds=60,
                             default_lifetime=timedelta(minutes=5), now=clock)  # fmt: skip
    relay = start_relay(service, mosquitto, tmp_path / "central")
    yield Rig(central_db, service, relay, key, clock, mosquitto)
    relay.close()


def audit(db: Database, action: str) -> list[tuple[str, str, dict[str, object]]]:
    a = audit_log.c
    with db.read() as conn:
        rows = conn.execute(select(a.outcome, a.reason, a.detail).where(a.action == action)
                            .order_by(a.pk)).all()  # fmt: skip
    return [(r.outcome, r.reason, r.detail) for r in rows]


def test_commands_unlock_is_signed_published_and_answered_done(rig: Rig) -> None:
    device = unique_device()
    register(rig.db, device, "hall-a", doors=("main", "side"))
    door = rig.device(device)
    try:
        door.online()
        command_id = rig.service.issue(device, "door.unlock", UNLOCK, issuer="staff:sato",
                                       source="10.0.0.5")  # fmt: skip
        got = door.next_command()  # verify() checked signature, device and expiry
        assert got.command.id == command_id and not got.retain
        assert got.response_topic == device_topic(device, "results")
        assert got.correlation == command_id.encode()
        assert got.command.issued_by == "staff:sato"
        rig.wait_state(command_id, "sent")
        assert door.answer(got, "delivered") == 0
        rig.wait_state(command_id, "delivered")
        door.answer(got, "done", message="unlocked", detail={"door": "main", "seconds": 10})
        rig.wait_state(command_id, "done")
        door.answer(got, "delivered")  # late and out of order: a final state stays
        door.answer(got, "failed", code="late")
        wait_until(lambda: rig.relay.counts["stale"] >= 2, 10, "the stale answers")
        row = rig.service.get(command_id)
        assert row is not None and row["state"] == "done" and row["detail"]["door"] == "main"
    finally:
        door.close()
    [(outcome, _, detail)] = audit(rig.db, "command.issue")
    assert outcome == "ok" and detail == {"command_id": command_id, "command": "door.unlock",
                                          "door": "main", "seconds": 10.0}  # fmt: skip
    assert "jammed" not in json.dumps(detail)  # the staff's reason stays with the command
    [(outcome, reason, _)] = audit(rig.db, "command.result")
    assert (outcome, reason) == ("ok", "ok")
    app = create_app(rig.db, code_key=fixed_code_key, commands=rig.service)
    _, token = TokenStore(rig.db).create("reader")
    with TestClient(app) as http:
        answer = http.get(f"/api/commands/{command_id}",
                          headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        listing = http.get(f"/api/devices/{device}/commands",
                           headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert answer.status_code == 200 and answer.json()["state"] == "done"
    assert [c["id"] for c in listing.json()] == [command_id]


def test_commands_offline_device_gets_its_command_on_reconnection(rig: Rig) -> None:
    device = unique_device()
    register(rig.db, device, "hall-b")
    command_id = rig.service.issue(device, "config.reload", {}, issuer="staff:sato", source="x")
    rig.wait_state(command_id, "sent")  # the broker took it; nobody was listening
    door = rig.device(device)
    try:
        door.online()  # its birth message: central says it again
        got = door.next_command()
        assert got.command.id == command_id
        door.answer(got, "delivered")
        rig.wait_state(command_id, "delivered")
        assert rig.relay.counts["republished"] >= 1
    finally:
        door.close()


def test_commands_expired_while_offline_is_never_sent_and_reported(rig: Rig) -> None:
    device = unique_device()
    register(rig.db, device, "hall-c")
    old = rig.service.issue(device, "device.reboot", {}, issuer="staff:sato", source="x",
                            lifetime=timedelta(seconds=30))  # fmt: skip
    rig.wait_state(old, "sent")
    rig.clock.moment += timedelta(seconds=31)
    rig.relay.wake()
    rig.wait_state(old, "expired")
    fresh = rig.service.issue(device, "config.reload", {}, issuer="staff:sato", source="x")
    rig.wait_state(fresh, "sent")
    door = rig.device(device)
    try:
        door.online()
        # The expired one would come first (issued first): only the fresh one comes.
        got = door.next_command()
        assert got.command.id == fresh
        door.answer(got, "done")
        rig.wait_state(fresh, "done")
    finally:
        door.close()
    assert rig.state(old) == "expired"
    [(outcome, reason, detail)] = audit(rig.db, "command.expire")
    assert (outcome, reason, detail["command_id"]) == ("failed", "expired", old)


def test_commands_results_from_another_device_or_unknown_ids_are_ignored(rig: Rig) -> None:
    device, other = unique_device(), unique_device("evil")
    register(rig.db, device, "hall-d")
    register(rig.db, other, "hall-d")
    door, evil = rig.device(device), rig.device(other)
    try:
        door.online()
        command_id = rig.service.issue(device, "config.reload", {}, issuer="staff:sato",
                                       source="x")  # fmt: skip
        got = door.next_command()
        # The broker's ACL keeps another device off this device's results topic...
        assert evil.answer(got, "done") != 0
        # ...and on its own topic it may only speak for itself.
        own = Received(got.command, device_topic(other, "results"), got.correlation, False)
        evil.answer(own, "done")
        evil.answer(own, "done", device=device)  # claims to be the other device
        wait_until(lambda: rig.relay.counts["wrong_device"] >= 2, 10, "the refusals")
        assert rig.state(command_id) == "sent"
        door.client.publish(device_topic(device, "results"), b"{not json")
        wait_until(lambda: rig.relay.counts["malformed"] >= 1, 10, "the malformed answer")
        # A command central never issued, refused by the device (a forgery
        # that reached it): ignored, and in the audit log as a security signal.
        forged_id = str(uuid.uuid4())
        forged = got.command.model_copy(update={"id": forged_id})
        door.answer(
            Received(forged, got.response_topic, b"x", False),
            "refused",
            code="bad_signature",
            message="the command's signature does not verify",
        )
        wait_until(lambda: rig.relay.counts["unknown"] >= 1, 10, "the unknown id")
        entries = audit(rig.db, "command.refused_unknown")
        assert [(o, r, d["command_id"]) for o, r, d in entries] == [
            ("refused", "bad_signature", forged_id)
        ]
        assert rig.state(command_id) == "sent"
    finally:
        door.close()
        evil.close()


def test_commands_refusals_are_clear_and_audited(central_db: Database) -> None:
    service = CommandService(central_db, Ed25519PrivateKey.generate(), max_unlock_seconds=60)
    register(central_db, "door-r1", "hall-r", doors=("main",))
    register(central_db, "kiosk-r2", "hall-empty")  # a facility whose doors central does not know
    cases: list[tuple[str, str, dict[str, Any], str, str, str]] = [
        ("ghost-1", "door.unlock", UNLOCK, "staff:sato", "unknown_device", "ghost-1"),
        ("door-r1", "door.unlock", {**UNLOCK, "door": "back"}, "staff:sato", "unknown_door",
         "main"),
        ("door-r1", "door.unlock", {**UNLOCK, "seconds": 120}, "staff:sato", "over_cap", "60 s"),
        ("door-r1", "door.unlock", {**UNLOCK, "reason": "for 012345678901"}, "staff:sato",
         "bad_reason", "personal data"),
        ("door-r1", "door.unlock", UNLOCK, "token:ab12cd34", "second_factor_required",
         "second factor"),
        ("door-r1", "door.unlock", {"door": "main"}, "staff:sato", "bad_args", "seconds"),
    ]  # fmt: skip
    for device, name, args, issuer, code, said in cases:
        with pytest.raises(CommandRefused) as refused:
            service.issue(device, name, args, issuer=issuer, source="10.0.0.9")
        assert refused.value.code == code and said in refused.value.message, code
    assert service.issue(
        "kiosk-r2", "door.relock", {"door": "anything"}, issuer="staff:s", source="x"
    )  # the device decides where central knows no doors
    with central_db.read() as conn:
        assert len(conn.execute(select(device_commands.c.id)).all()) == 1
    refusals = [(o, r) for o, r, _ in audit(central_db, "command.issue") if o == "refused"]
    assert refusals == [("refused", c[4]) for c in cases]
    unconfigured = CommandService(central_db, None)
    with pytest.raises(CommandRefused) as refused:
        unconfigured.issue("door-r1", "door.relock", {"door": "main"}, issuer="staff:s",
                           source="x")  # fmt: skip
    assert refused.value.code == "not_configured" and refused.value.status == 503


def test_commands_final_state_never_goes_back(central_db: Database) -> None:
    service = CommandService(central_db, Ed25519PrivateKey.generate())
    register(central_db, "door-f1", "hall-f")
    command_id = service.issue("door-f1", "config.reload", {}, issuer="staff:s", source="x")

    def result(state: ResultState) -> CommandResult:
        return CommandResult(id=command_id, device="door-f1", name="config.reload",
                             state=state, code="ok", at=datetime.now(UTC))  # fmt: skip

    assert service.apply_result("door-f1", result("refused")) == "applied"
    states: tuple[ResultState, ...] = ("delivered", "done")
    for state in states:
        assert service.apply_result("door-f1", result(state)) == "stale"
    assert service.get(command_id)["state"] in FINAL_STATES  # type: ignore[index]
    assert service.apply_result("door-f2", result("done")) == "wrong_device"


def test_commands_facility_lockdown_reaches_every_device(central_db: Database) -> None:
    service = CommandService(central_db, Ed25519PrivateKey.generate())
    for d in ("door-l1", "door-l2"):
        register(central_db, d, "hall-l", doors=("a", "b") if d == "door-l1" else ())
    ids = service.issue_facility("hall-l", "door.lockdown", {"reason": "fire alarm drill"},
                                 issuer="staff:s", source="x")  # fmt: skip
    rows = [service.get(i) for i in ids]
    assert sorted((r["device"], r["args"]["door"]) for r in rows if r) == [
        ("door-l1", "*"), ("door-l2", "*")]  # fmt: skip
    for name in ("door.relock", "door.release"):  # "*" too: one per device
        assert len(service.issue_facility("hall-l", name, {}, issuer="staff:s", source="x")) == 2
    with pytest.raises(CommandRefused) as refused:
        service.issue_facility("hall-none", "door.release", {}, issuer="staff:s", source="x")
    assert refused.value.code == "no_devices"
    before = len(service.listing(facility="hall-l", limit=100))
    with pytest.raises(CommandRefused) as refused:  # checked for every device before any is sent
        service.issue_facility("hall-l", "door.lockdown", {"reason": "no"}, issuer="staff:s",
                               source="x")  # fmt: skip
    assert refused.value.code == "bad_args"
    assert len(service.listing(facility="hall-l", limit=100)) == before


def test_commands_api_tokens_issue_routine_commands_only(central_db: Database) -> None:
    service = CommandService(central_db, Ed25519PrivateKey.generate())
    register(central_db, "door-a1", "hall-a", doors=("main",))
    app = create_app(central_db, code_key=fixed_code_key, commands=service)
    tokens = TokenStore(central_db)
    auth = {role: {"Authorization": f"Bearer {tokens.create(role)[1]}"}
            for role in ("reader", "operator")}  # fmt: skip
    relock = {"name": "door.relock", "args": {"door": "main"}}
    with TestClient(app) as http:
        made = http.post("/api/devices/door-a1/commands", json=relock, headers=auth["operator"])
        assert made.status_code == 201 and made.json()["state"] == "queued"
        assert made.json()["issued_by"].startswith("token:")
        denied = http.post("/api/devices/door-a1/commands", json=relock, headers=auth["reader"])
        assert denied.status_code == 403
        unlock = {"name": "door.unlock", "args": UNLOCK}
        answer = http.post("/api/devices/door-a1/commands", json=unlock, headers=auth["operator"])
        assert (answer.status_code, answer.json()["error"]) == (403, "second_factor_required")
        ghost = http.post("/api/devices/ghost/commands", json=relock, headers=auth["operator"])
        assert (ghost.status_code, ghost.json()["error"]) == (404, "unknown_device")
        bad = http.post("/api/devices/door-a1/commands", headers=auth["operator"],
                        json={"name": "door.relock", "args": {"door": "main"},
                              "lifetime_seconds": 10**6})  # fmt: skip
        assert bad.status_code == 422  # the request's own shape: FastAPI's validation
        facility = http.post("/api/facilities/hall-a/commands", headers=auth["operator"],
                             json={"name": "door.release"})  # fmt: skip
        assert facility.status_code == 201 and len(facility.json()["ids"]) == 1
    unconfigured = create_app(central_db, code_key=fixed_code_key)
    with TestClient(unconfigured) as http:
        off = http.post("/api/devices/door-a1/commands", json=relock, headers=auth["operator"])
        assert (off.status_code, off.json()["error"]) == (503, "not_configured")


def test_commands_late_answer_replaces_centrals_presumed_expiry(central_db: Database) -> None:
    clock = Clock(datetime.now(UTC))
    service = CommandService(central_db, Ed25519PrivateKey.generate(), now=clock)
    heard: list[CommandResult] = []
    service.result_hooks.append(heard.append)
    register(central_db, "door-x1", "hall-x")
    command_id = service.issue("door-x1", "config.reload", {}, issuer="staff:s", source="x",
                               lifetime=timedelta(seconds=30))  # fmt: skip
    clock.moment += timedelta(seconds=31)
    assert service.expire_due() == [command_id]
    assert service.to_publish(include_sent=True) == []  # never sent again
    # The device had taken it just in time (by its clock): its answer is the truth.
    done = CommandResult(id=command_id, device="door-x1", name="config.reload", state="done",
                         code="ok", at=datetime.now(UTC))  # fmt: skip
    assert service.apply_result("door-x1", done) == "applied"
    row = service.get(command_id)
    assert row is not None and (row["state"], row["code"]) == ("done", "ok")
    assert [r for _, r, _ in audit(central_db, "command.result")] == ["ok"]
    assert [(r.id, r.state) for r in heard] == [(command_id, "done")]
