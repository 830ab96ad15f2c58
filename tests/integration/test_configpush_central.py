"""Pushed configuration at central (central.configpush) on a real database:
versions, the facility + device merge, refusals at central, audit entries;
and the whole path to a real device store and file and back (the issuer
signs the command and puts it in the device's ledger, as the sync agent
does with what it receives; the device's health is stored by the ingest
store)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from central.audit import AuditFilter, query
from central.configpush import ConfigPushRefused, ConfigPushService
from central.db.engine import Database
from central.db.tables import device_config_versions, devices
from central.ingest.store import IngestStore
from contracts.commands import DeviceCommand
from sync.config import load_config
from sync.configpush import config_apply_handler
from sync.health import HealthCollector
from sync.ledger import CommandLedger
from sync.outbox import Outbox
from sync.reservations import ReservationCache, ReservationSync
from sync.store import Store, open_store
from tests.harness.configpush import CommandKey

NOW = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)
ADMIN = "staff:admin1"
DEVICE_TOML = """\
[device]
id = "gym-door-01"
facility = "gym"

[lock]
pin_factory = "mock"

[[doors]]
id = "front"
relay_pin = 17

[commands]
public_key_file = "command.pub"
system = "sim"
"""


def add_devices(db: Database) -> None:
    with db.write() as conn:
        for device, facility in (("gym-door-01", "gym"), ("gym-door-02", "gym"),
                                 ("pool-door-01", "pool")):  # fmt: skip
            conn.execute(insert(devices).values(id=device, facility=facility, status="online",
                                                session=1, versions={}))  # fmt: skip


def audit(db: Database, action: str) -> list[Any]:
    """The entries of ``action``, oldest first."""
    return list(reversed(query.page(db, AuditFilter(None, None, "", action, "", ""))))


@pytest.fixture
def service(central_db: Database) -> ConfigPushService:
    add_devices(central_db)
    return ConfigPushService(central_db)


def test_configpush_central_versions_and_desired_merge(service: ConfigPushService) -> None:
    text = (
        "[lock]\ndefault_unlock_seconds = 8\nmax_unlock_seconds = 40\n"
        '[doors."*"]\nheld_open_seconds = 60\n'
    )
    facility = service.save("facility", "gym", text, actor=ADMIN, now=NOW,
                            note="longer for the wheelchair users")  # fmt: skip
    device = service.save("device", "gym-door-01", "[lock]\ndefault_unlock_seconds = 10\n",
                          actor=ADMIN, now=NOW)  # fmt: skip
    assert device > facility
    desired = service.desired("gym-door-01")
    assert desired is not None
    assert desired.version == device
    assert (desired.facility_version, desired.device_version) == (facility, device)
    assert desired.settings == {"lock": {"default_unlock_seconds": 10, "max_unlock_seconds": 40},
                                "doors": {"*": {"held_open_seconds": 60}}}  # fmt: skip
    other = service.desired("gym-door-02")
    assert other is not None and other.version == facility
    assert other.settings["lock"]["default_unlock_seconds"] == 8
    assert service.desired("pool-door-01") is None
    newer = service.save("facility", "gym", "[voice]\nvolume = 30\n", actor=ADMIN, now=NOW)
    again = service.desired("gym-door-01")
    assert again is not None and again.version == newer  # a facility save moves its devices
    assert again.settings == {"voice": {"volume": 30}, "lock": {"default_unlock_seconds": 10}}
    history = service.history("facility", "gym")
    assert [v.version for v in history] == [newer, facility]
    assert history[1].note == "longer for the wheelchair users"
    saves = audit(service.db, "config.save")
    assert (saves[0].subject, saves[0].outcome) == ("config:facility:gym", "ok")
    assert saves[0].detail == {
        "version": facility,
        "keys": ["doors.*.held_open_seconds", "lock.default_unlock_seconds",
                 "lock.max_unlock_seconds"],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("scope", "target", "text", "code"),
    [
        ("device", "gym-door-01", '[broker]\nhost = "evil.example"\n', "not_pushable"),
        ("device", "gym-door-01", "[doors.front]\nrelay_pin = 4\n", "not_pushable"),
        ("facility", "gym", '[commands]\npublic_key_file = "/tmp/k"\n', "not_pushable"),
        ("facility", "gym", "[lock\n", "bad_toml"),
        ("device", "nowhere-01", "[voice]\nvolume = 3\n", "unknown_target"),
        ("shelf", "gym", "[voice]\nvolume = 3\n", "unknown_target"),
    ],
)
def test_configpush_central_refuses_and_audits(
    service: ConfigPushService, scope: str, target: str, text: str, code: str
) -> None:
    with pytest.raises(ConfigPushRefused) as caught:
        service.save(scope, target, text, actor=ADMIN, now=NOW)
    assert caught.value.code == code
    if code == "not_pushable":
        assert "is not pushable" in caught.value.message
    with service.db.read() as conn:
        assert conn.execute(select(device_config_versions)).all() == []
    refused = audit(service.db, "config.save")
    assert [(e.actor, e.outcome, e.reason) for e in refused] == [(ADMIN, "refused", code)]


def test_configpush_central_push_without_config_or_issuer_is_refused(
    service: ConfigPushService,
) -> None:
    with pytest.raises(ConfigPushRefused) as caught:
        service.push("pool-door-01", actor=ADMIN, source="192.0.2.1", now=NOW)
    assert caught.value.code == "nothing_to_push"
    service.save("device", "pool-door-01", "[voice]\nvolume = 3\n", actor=ADMIN, now=NOW)
    with pytest.raises(ConfigPushRefused) as caught:
        service.push("pool-door-01", actor=ADMIN, source="192.0.2.1", now=NOW)
    assert caught.value.code == "no_issuer"
    pushes = audit(service.db, "config.push")
    assert [(e.outcome, e.reason) for e in pushes] == [("refused", "nothing_to_push"),
                                                       ("refused", "no_issuer")]  # fmt: skip


@dataclass
class Fleet:
    """One device (its folder, store and key) and the issuer central uses."""

    folder: Path
    store: Store
    key: CommandKey
    restarts: list[list[str]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)

    def issue(self, device: str, name: str, args: dict[str, Any], issuer: str,
              source: str) -> str:  # fmt: skip
        """Sign as central does and hand over as the agent does (the ledger)."""
        body = self.key.sign(device, name, args, issued_by=issuer)
        command = DeviceCommand.model_validate_json(body)
        CommandLedger(self.store).receive(command.id, name, "agent", body, expires=2e9, now=1.0)
        self.issued.append(command.id)
        return command.id

    def run_agent_command(self, service: ConfigPushService) -> Any:
        """The agent runs the command and central gets its result and health."""
        config = load_config(self.folder / "device.toml")
        entry = CommandLedger(self.store).get(self.issued[-1])
        assert entry is not None
        command = DeviceCommand.model_validate_json(entry.body)
        outcome = config_apply_handler(config, self.store, self.restarts.append)(command, None)
        service.record_result(command.device, command.id, state=outcome.state,
                              code=outcome.code, message=outcome.message, now=NOW)  # fmt: skip
        after = load_config(self.folder / "device.toml")  # the restarted agent
        sync = ReservationSync(ReservationCache(self.store, "gym"))
        health = HealthCollector(after.store.path, Outbox(self.store), sync, lambda: 1,
                                 config_version=after.pushed_version).collect()  # fmt: skip
        IngestStore(service.db, "test").record_health(command.device, health)
        return outcome


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    (tmp_path / "device.toml").write_text(DEVICE_TOML)
    key = CommandKey()
    key.write_public(tmp_path / "command.pub")
    with open_store(tmp_path / "device.db") as store:
        yield Fleet(tmp_path, store, key)


def test_configpush_central_push_reaches_the_device_and_applied_shows(
    central_db: Database, fleet: Fleet
) -> None:
    add_devices(central_db)
    service = ConfigPushService(central_db, fleet.issue)
    version = service.save(
        "facility", "gym", "[lock]\ndefault_unlock_seconds = 8\n", actor=ADMIN, now=NOW
    )
    command_id = service.push("gym-door-01", actor=ADMIN, source="192.0.2.1", now=NOW)
    [status] = service.statuses(device="gym-door-01")
    assert (status.desired_version, status.pushed_version, status.state) == (
        version, version, "pending")  # fmt: skip
    outcome = fleet.run_agent_command(service)
    assert (outcome.state, outcome.code) == ("done", "applied")
    assert fleet.restarts == [["kiosk", "lockctl", "sync"]]
    [status] = service.statuses(device="gym-door-01")
    assert (status.applied_version, status.state) == (version, "applied")
    assert load_config(fleet.folder / "device.toml").lock.default_unlock_seconds == 8
    pushes = audit(central_db, "config.push")
    assert [(e.subject, e.source, e.detail) for e in pushes] == [
        ("device:gym-door-01", "192.0.2.1", {"version": version, "command_id": command_id})
    ]

    # Valid for the allowlist, invalid for the device: refused there, old file kept.
    kept = (fleet.folder / "pushed-config.json").read_bytes()
    over = "[lock]\ndefault_unlock_seconds = 45\n"
    bad = service.save("device", "gym-door-01", over, actor=ADMIN, now=NOW)
    service.push("gym-door-01", actor=ADMIN, source="192.0.2.1", now=NOW)
    outcome = fleet.run_agent_command(service)
    assert (outcome.state, outcome.code) == ("refused", "invalid_config")
    assert (fleet.folder / "pushed-config.json").read_bytes() == kept
    assert fleet.restarts == [["kiosk", "lockctl", "sync"]]
    [status] = service.statuses(device="gym-door-01")
    assert (status.desired_version, status.applied_version, status.pushed_version) == (
        bad, version, bad)  # fmt: skip
    assert status.state == "refused" and status.code == "invalid_config"
    assert "default_unlock_seconds must not exceed max_unlock_seconds" in status.message
    results = audit(central_db, "config.result")
    assert [(e.actor, e.outcome, e.reason) for e in results] == [
        ("device:gym-door-01", "ok", "applied"),
        ("device:gym-door-01", "refused", "invalid_config"),
    ]
    signed = json.loads(kept)
    assert signed["args"]["version"] == version and signed["issued_by"] == ADMIN
