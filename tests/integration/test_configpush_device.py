"""Pushed configuration on a device: a real store, a real device file, a
command signed with a test key; the configuration read back by a new
process (``python -m sync config``), as every device service does at start."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from contracts.commands import DeviceCommand
from sync.config import load_config
from sync.configpush import VERSION_KEY, applied_version, apply_pushed, config_apply_handler
from sync.health import HealthCollector
from sync.ledger import CommandLedger
from sync.outbox import Outbox
from sync.reservations import ReservationCache, ReservationSync
from sync.store import Store, open_store
from tests.harness.configpush import CommandKey

ROOT = Path(__file__).resolve().parents[2]
DEVICE_TOML = """\
[device]
id = "gym-door-01"
facility = "gym"

[store]
path = "device.db"

[lock]
pin_factory = "mock"
default_unlock_seconds = 5
max_unlock_seconds = 30

[[doors]]
id = "front"
relay_pin = 17

[[doors]]
id = "back"
relay_pin = 18

[commands]
public_key_file = "command.pub"
system = "sim"
pushed_config_file = "pushed-config.json"
"""
GOOD: dict[str, Any] = {"lock": {"default_unlock_seconds": 8},
                        "doors": {"back": {"held_open_seconds": 90}}}  # fmt: skip


@dataclass
class Device:
    folder: Path
    key: CommandKey
    store: Store
    restarts: list[list[str]] = field(default_factory=list)

    @property
    def config(self) -> Path:
        return self.folder / "device.toml"

    @property
    def pushed(self) -> Path:
        return self.folder / "pushed-config.json"

    def apply(self, body: bytes) -> Any:
        return apply_pushed(body, self.config, store=self.store, restart=self.restarts.append)

    def push(self, version: int, settings: dict[str, Any], device: str = "gym-door-01") -> Any:
        return self.apply(self.key.push(device, version, settings))


@pytest.fixture
def device(tmp_path: Path) -> Any:
    (tmp_path / "device.toml").write_text(DEVICE_TOML)
    key = CommandKey()
    key.write_public(tmp_path / "command.pub")
    with open_store(tmp_path / "device.db") as store:
        yield Device(tmp_path, key, store)


def show(config: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``python -m sync config --show`` in a new process: its JSON and its log lines."""
    result = subprocess.run(
        [sys.executable, "-m", "sync", "config", "--show", "--config", str(config)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    logs = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    return json.loads(result.stdout), logs


def test_configpush_device_valid_push_is_kept_restarted_and_read_by_a_new_process(
    device: Device,
) -> None:
    body = device.key.push("gym-door-01", 2, GOOD)
    outcome = device.apply(body)
    assert (outcome.state, outcome.code) == ("done", "applied")
    assert outcome.detail == {"version": 2, "services": ["kiosk", "lockctl", "sync"]}
    assert device.pushed.read_bytes() == body  # the signed command itself
    assert device.restarts == [["kiosk", "lockctl", "sync"]]
    assert applied_version(device.store) == 2
    shown, logs = show(device.config)
    assert shown["lock"]["default_unlock_seconds"] == 8
    assert shown["lock"]["max_unlock_seconds"] == 30
    assert [d.get("held_open_seconds") for d in shown["doors"]] == [30, 90]
    assert shown["pushed_version"] == 2
    assert not [line for line in logs if line["level"] == "ERROR"]
    config = load_config(device.config)
    outbox = Outbox(device.store)
    collector = HealthCollector(config.store.path, outbox,
                                ReservationSync(ReservationCache(device.store, "gym")), lambda: 1,
                                config_version=config.pushed_version)  # fmt: skip
    assert collector.collect().config_version == 2


def test_configpush_device_same_version_again_changes_nothing(device: Device) -> None:
    body = device.key.push("gym-door-01", 3, GOOD)
    assert device.apply(body).code == "applied"
    again = device.apply(device.key.push("gym-door-01", 3, GOOD))
    assert (again.state, again.code) == ("done", "unchanged")
    assert device.pushed.read_bytes() == body
    assert device.restarts == [["kiosk", "lockctl", "sync"]]


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("default_over_max", "invalid_config"),
        ("not_pushable", "not_pushable"),
        ("bad_signature", "bad_signature"),
        ("other_key", "unknown_key"),
        ("other_device", "wrong_device"),
        ("unknown_door", "unknown_door"),
        ("stale_version", "stale_version"),
        ("wrong_type", "invalid_config"),
    ],
)
def test_configpush_device_invalid_push_is_refused_and_the_old_file_kept(
    device: Device, case: str, code: str
) -> None:
    kept = device.key.push("gym-door-01", 5, GOOD)
    assert device.apply(kept).code == "applied"
    device.restarts.clear()
    key, target, settings = device.key, "gym-door-01", dict(GOOD)
    if case == "default_over_max":
        settings = {"lock": {"default_unlock_seconds": 60, "max_unlock_seconds": 30}}
    elif case == "not_pushable":
        settings = {"broker": {"host": "evil.example"}}
    elif case == "other_key":
        key = CommandKey()
    elif case == "other_device":
        target = "gym-door-02"
    elif case == "unknown_door":
        settings = {"doors": {"side": {"unlock_seconds": 3}}}
    elif case == "wrong_type":
        settings = {"voice": {"volume": "loud"}}
    version = 4 if case == "stale_version" else 6
    body = key.push(target, version, settings)  # sign() takes any settings: the device checks
    if case == "bad_signature":
        tampered = json.loads(body)
        tampered["args"]["settings"] = {"lock": {"default_unlock_seconds": 9}}
        body = json.dumps(tampered).encode()
    outcome = device.apply(body)
    assert (outcome.state, outcome.code) == ("refused", code), outcome.message
    if case == "default_over_max":
        assert "default_unlock_seconds must not exceed max_unlock_seconds" in outcome.message
    if case == "not_pushable":
        assert "[broker] is not pushable" in outcome.message
    assert device.pushed.read_bytes() == kept
    assert device.restarts == []
    assert applied_version(device.store) == 5
    assert load_config(device.config).lock.default_unlock_seconds == 8


def test_configpush_device_same_version_no_longer_valid_is_refused(device: Device) -> None:
    assert device.push(3, GOOD).code == "applied"
    lowered = DEVICE_TOML.replace("max_unlock_seconds = 30", "max_unlock_seconds = 6")
    device.config.write_text(lowered)  # a software update's stricter file
    again = device.push(3, GOOD)
    assert (again.state, again.code) == ("refused", "invalid_config")


def test_configpush_device_restart_failure_is_reported_with_the_file_applied(
    device: Device,
) -> None:
    def broken(services: list[str]) -> None:
        raise RuntimeError("systemctl: unit kiosk.service not found")

    body = device.key.push("gym-door-01", 2, {"sync": {"batch_size": 50}})
    outcome = apply_pushed(body, device.config, store=device.store, restart=broken)
    assert (outcome.state, outcome.code) == ("failed", "restart_failed")
    assert device.pushed.read_bytes() == body
    assert load_config(device.config).sync.batch_size == 50


def test_configpush_device_handler_takes_the_signed_body_from_the_ledger(device: Device) -> None:
    body = device.key.push("gym-door-01", 9, {"voice": {"volume": 20}})
    command = DeviceCommand.model_validate_json(body)
    ledger = CommandLedger(device.store)
    assert ledger.receive(command.id, command.name, "agent", body, expires=2e9, now=1.0)
    handle = config_apply_handler(load_config(device.config), device.store, device.restarts.append)
    outcome = handle(command, None)
    assert (outcome.state, outcome.code) == ("done", "applied")
    assert device.restarts == [["kiosk", "sync"]]
    missing = command.model_copy(update={"id": str(uuid.uuid4())})
    assert handle(missing, None).code == "not_in_ledger"


@pytest.mark.parametrize(
    "case", ["corrupt", "unsigned", "other_device", "invalid_after_update", "key_gone"]
)
def test_configpush_device_bad_pushed_file_at_start_leaves_the_base_config(
    device: Device, case: str
) -> None:
    if case == "corrupt":
        device.pushed.write_bytes(b'{"v": 1, "id": "half a fi')
        expected = "malformed"
    elif case == "unsigned":
        device.pushed.write_bytes(CommandKey().push("gym-door-01", 2, GOOD))
        expected = "unknown_key"
    elif case == "other_device":
        device.pushed.write_bytes(device.key.push("gym-door-02", 2, GOOD))
        expected = "wrong_device"
    elif case == "key_gone":
        assert device.push(2, GOOD).code == "applied"
        (device.folder / "command.pub").unlink()
        expected = "no_key"
    else:  # valid when pushed; the device file (a software update) now caps lower
        assert device.push(2, GOOD).code == "applied"
        device.config.write_text(
            DEVICE_TOML.replace("max_unlock_seconds = 30", "max_unlock_seconds = 6")
        )
        expected = "invalid_config"
    shown, logs = show(device.config)
    assert shown["lock"]["default_unlock_seconds"] == 5
    assert shown["pushed_version"] is None
    errors = [line for line in logs if line["level"] == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["msg"].startswith("pushed configuration not applied")
    assert errors[0]["code"] == expected
    assert errors[0]["file"] == str(device.pushed)
    if case == "invalid_after_update":
        assert "default_unlock_seconds must not exceed" in errors[0]["problem"]


def test_configpush_device_version_is_kept_in_the_store(device: Device) -> None:
    assert device.push(4, GOOD).code == "applied"
    assert device.store.get_state(VERSION_KEY) == "4"
