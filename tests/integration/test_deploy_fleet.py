"""``python -m deploy fleet``: the generated CA, certificates, device config
and the generated mosquitto config itself, run by a real mosquitto."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from deploy.fleet import load_fleet
from sync.config import load_config
from sync.ledger import load_command_keys
from tests.harness.mosquitto import ClientIdentity, Mosquitto, start_fleet_broker
from tests.harness.mqtt import connect

NOT_AUTHORIZED = 0x87
ROOT = Path(__file__).resolve().parents[2]


def deploy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy", "fleet", *args],
        check=False,
        capture_output=True,
        text=True,
    )


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Path:
    root = tmp_path / "fleet"
    assert deploy("init", str(root), "--broker-host", "localhost").returncode == 0
    for device, facility in (("gym-door-1", "gym"), ("pool-door-1", "pool")):
        done = deploy("device", str(root), "--id", device, "--facility", facility)
        assert done.returncode == 0, done.stderr
    return root


@pytest.fixture
def fleet_broker(fleet_dir: Path) -> Iterator[Mosquitto]:
    """A mosquitto running the generated mosquitto.conf (port and folders moved)."""
    broker, process = start_fleet_broker(fleet_dir)
    yield broker
    process.stop()


def identity(fleet_dir: Path, device: str) -> ClientIdentity:
    folder = fleet_dir / "devices" / device
    config = load_config(folder / "device.toml")
    assert config.broker.tls is not None
    return ClientIdentity(
        device, config.broker.tls.cert_file, config.broker.tls.key_file, config.broker.tls.ca_file
    )


def test_deploy_fleet_files_and_registry(fleet_dir: Path) -> None:
    fleet = load_fleet(fleet_dir)
    assert fleet.devices == {"gym-door-1": "gym", "pool-door-1": "pool"}
    ca = x509.load_pem_x509_certificate((fleet_dir / "ca" / "ca.pem").read_bytes())
    device = x509.load_pem_x509_certificate(
        (fleet_dir / "devices" / "gym-door-1" / "device.pem").read_bytes()
    )
    device.verify_directly_issued_by(ca)
    cn = device.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert cn == "gym-door-1"
    key = fleet_dir / "devices" / "gym-door-1" / "device.key"
    assert key.stat().st_mode & 0o077 == 0
    acl = (fleet_dir / "broker" / "acl").read_text()
    assert "user gym-door-1\ntopic read kiosk/v1/facilities/gym/reservations" in acl
    assert "pattern write kiosk/v1/devices/%u/events" in acl
    assert "pattern read kiosk/v1/devices/%u/staffcall" in acl
    assert "readwrite kiosk/v1/devices/%u" not in acl
    conf = (fleet_dir / "broker" / "mosquitto.conf").read_text()
    for line in (
        "require_certificate true",
        "use_identity_as_username true",
        "allow_anonymous false",
        f"crlfile {fleet_dir / 'broker' / 'crl.pem'}",
    ):
        assert line in conf
    config = load_config(fleet_dir / "devices" / "gym-door-1" / "device.toml")
    assert (config.device.id, config.device.facility) == ("gym-door-1", "gym")


def test_deploy_fleet_refuses_bad_and_duplicate_devices(fleet_dir: Path) -> None:
    for args in (
        ("--id", "gym-door-1", "--facility", "gym"),
        ("--id", "central", "--facility", "gym"),
        ("--id", "Bad_ID", "--facility", "gym"),
        ("--id", "ok-id", "--facility", "a/#"),
    ):
        done = deploy("device", str(fleet_dir), *args)
        assert done.returncode == 2
        assert done.stderr.startswith("error: ")
    assert deploy("init", str(fleet_dir)).returncode == 2
    missing = deploy("device", str(fleet_dir / "nope"), "--id", "x", "--facility", "y")
    assert missing.returncode == 1 and "fleet init" in missing.stderr


def test_deploy_generated_broker_confines_devices(fleet_dir: Path, fleet_broker: Mosquitto) -> None:
    gym = connect(fleet_broker, identity(fleet_dir, "gym-door-1"))
    central_id = ClientIdentity(
        "central",
        fleet_dir / "central" / "central.pem",
        fleet_dir / "central" / "central.key",
        fleet_dir / "central" / "ca.pem",
    )
    central = connect(fleet_broker, central_id)
    try:
        assert gym.publish("kiosk/v1/devices/gym-door-1/events", "{}") < 0x80
        assert gym.publish("kiosk/v1/devices/pool-door-1/events", "{}") == NOT_AUTHORIZED
        assert gym.publish("kiosk/v1/facilities/gym/reservations", "{}") == NOT_AUTHORIZED
        gym.subscribe("kiosk/v1/facilities/gym/reservations")
        gym.subscribe("kiosk/v1/facilities/pool/reservations")
        central.publish("kiosk/v1/facilities/pool/reservations", "pool")
        central.publish("kiosk/v1/facilities/gym/reservations", "gym")
        message = gym.next_message(10)
        assert (message.topic, message.payload) == ("kiosk/v1/facilities/gym/reservations", b"gym")
        assert gym.messages.empty()
    finally:
        gym.close()
        central.close()


def test_deploy_fleet_init_relative_folder_writes_absolute_broker_paths(tmp_path: Path) -> None:
    """mosquitto resolves relative paths against its own working directory:
    a fleet made as ``fleet init fleet`` must still name its files absolutely."""
    done = subprocess.run(
        [sys.executable, "-m", "deploy", "fleet", "init", "fleet", "--broker-host", "localhost"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    root = tmp_path / "fleet"
    paths = {
        line.split(" ", 1)[0]: line.split(" ", 1)[1]
        for line in (root / "broker" / "mosquitto.conf").read_text().splitlines()
        if line.startswith(("cafile ", "certfile ", "keyfile ", "acl_file ", "crlfile "))
    }
    assert set(paths) == {"cafile", "certfile", "keyfile", "acl_file", "crlfile"}
    for path in paths.values():
        assert Path(path).is_absolute() and Path(path).is_file(), path
    assert (root / "secrets" / "code-master.key").stat().st_mode & 0o077 == 0


def test_deploy_fleet_command_key_for_a_fleet_made_before_commands(fleet_dir: Path) -> None:
    secret = fleet_dir / "secrets" / "command.key"
    first_id = load_fleet(fleet_dir).command_key_id()
    secret.unlink()  # a fleet folder from before remote commands
    made = deploy("command-key", str(fleet_dir))
    assert made.returncode == 0 and "(created)" in made.stdout, made.stderr
    assert secret.stat().st_mode & 0o777 == 0o600
    key = load_fleet(fleet_dir).command_key_id()
    assert key != first_id and key in made.stdout
    again = deploy("command-key", str(fleet_dir))
    assert again.returncode == 0 and "(created)" not in again.stdout and key in again.stdout
    device = deploy("device", str(fleet_dir), "--id", "gym-door-9", "--facility", "gym")
    assert device.returncode == 0, device.stderr
    config = load_config(fleet_dir / "devices" / "gym-door-9" / "device.toml")
    assert list(load_command_keys(config.commands.public_key_file)) == [key]
