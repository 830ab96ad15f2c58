"""The Ansible playbooks applied for real to local targets
(``ansible_connection=local``), each device's file system under a throwaway
root (the installer's ``--root``), with central's real API (uvicorn) as the
health gate's source:

* site.yml provisions broker, central and a device into their roots;
* rollout.yml updates a device that reports healthy (and is idempotent);
* rollout.yml rolls a device that never reports healthy back to its previous
  release, and stops the rollout before the next device;
* the broker site.yml renders runs as mosquitto's own user, and refuses a
  device certificate revoked by ``provision --rotate`` once site.yml ran
  again; central's rendered config hashes codes under the key the device's
  bundle holds, and knows the inventory's devices (and no others).

Here the on-device installer is the stand-in of
tests/harness/fake_installer.py (same command line and layout) so that these
runs take seconds; tests/integration/test_deploy_ansible_installer.py runs
the rollout with the real installer and real signed bundles.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from central.config import code_key as central_code_key
from central.config import load_config as central_config
from central.db.engine import Database
from central.ingest.store import IngestStore
from contracts.commands import key_id
from contracts.reservations_hash import code_hash
from deploy import bundle
from deploy.fleet import add_device, init_fleet
from deploy.provision import DoorSpec, ProvisionRequest, provision
from kiosk.reader import code_key
from sync.config import load_config as device_config
from sync.ledger import load_command_keys
from tests.harness import fake_installer
from tests.harness.central_api import CentralApi
from tests.harness.mosquitto import ClientIdentity, Mosquitto
from tests.harness.mqtt import connect
from tests.harness.services import ServiceError, ServiceProcess, free_port, port_open, wait_until

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / "deploy" / "ansible"
BIN = Path(sys.executable).parent
DEVICES = ("dev-a", "dev-b")


@dataclass
class Fleet:
    folder: Path
    fleet: Path
    source: Path
    central: CentralApi

    def root(self, host: str) -> Path:
        return self.folder / "targets" / host

    def link(self, host: str, name: str = "current") -> str:
        return str((self.root(host) / "opt" / "city-kiosk" / name).readlink())

    def installer_calls(self, host: str) -> list[dict[str, Any]]:
        log = self.root(host) / "installer-calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def inventory(self, groups: dict[str, Any], **extra: Any) -> Path:
        everyone: dict[str, Any] = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "ansible_become": False,
            "city_kiosk_fleet_dir": str(self.fleet),
            "city_kiosk_source_archive": str(self.source),
            "city_kiosk_manage_services": False,
            "city_kiosk_install_packages": False,
            "city_kiosk_central_install": False,
            "city_kiosk_central_python": sys.executable,
            "city_kiosk_central_api": self.central.url,
            "city_kiosk_central_token": self.central.token,
            "city_kiosk_health_deadline_seconds": 4,
            "city_kiosk_health_poll_seconds": 1,
            "city_kiosk_ca_fingerprint": self.ca_fingerprint(),
            **extra,
        }
        path = self.folder / "inventory.json"  # JSON is YAML
        path.write_text(json.dumps({"all": {"vars": everyone, "children": groups}}, indent=1))
        return path

    def ca_fingerprint(self) -> str:
        return bundle.ca_fingerprint((self.fleet / "ca" / "ca.pem").read_bytes())

    def device_groups(self, *hosts: str) -> dict[str, Any]:
        members = {h: {"city_kiosk_root": str(self.root(h))} for h in hosts}
        return {
            "devices": {"children": {"facility_fac_1": {}}},
            "facility_fac_1": {"vars": {"city_kiosk_facility": "fac-1"}, "hosts": members},
            "role_door": {"vars": {"city_kiosk_role": "door"}, "hosts": {h: {} for h in hosts}},
        }


def source_archive(path: Path) -> Path:
    """The project source as the role unpacks it; here only deploy/install-device."""
    script = fake_installer.script_text().encode()
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("deploy/install-device")
        info.size, info.mode = len(script), 0o755
        archive.addfile(info, io.BytesIO(script))
    return path


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    fleet_dir = tmp_path / "fleet"
    init_fleet(fleet_dir, broker_host="localhost")
    (fleet_dir / "bundles").mkdir()
    for device in DEVICES:
        # What `python -m deploy provision` leaves: the bundle as one archive.
        folder = add_device(fleet_dir, device, "fac-1")
        with tarfile.open(fleet_dir / "bundles" / f"{device}.tar.gz", "w:gz") as bundle:
            for item in sorted(folder.iterdir()):
                bundle.add(item, item.name)
    central = CentralApi(tmp_path / "central.db").start()
    setup = Fleet(tmp_path, fleet_dir, source_archive(tmp_path / "city-kiosk.tar.gz"), central)
    for device in DEVICES:  # release r1 is installed and working everywhere
        fake_installer.install(fleet_dir / "bundles" / f"{device}.tar.gz", setup.root(device), "r1")
    yield setup
    central.stop()


def playbook(name: str, inventory: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
        "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"),
        "ANSIBLE_HOME": str(inventory.parent / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(inventory.parent / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory), name, *extra],
        cwd=ANSIBLE, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


class HealthyDevice:
    """Plays the device's sync agent: once the new release is active, it
    reports online and health to central again and again (like every
    health interval) until stopped."""

    def __init__(self, fleet: Fleet, host: str, release: str) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(fleet, host, release), daemon=True)

    def _run(self, fleet: Fleet, host: str, release: str) -> None:
        while not self.stop.wait(0.3):
            if fleet.link(host) == f"releases/{release}":
                fleet.central.report(host)

    def __enter__(self) -> HealthyDevice:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


def test_rollout_happy_path_device_reports_healthy(fleet: Fleet) -> None:
    inventory = fleet.inventory(fleet.device_groups("dev-a"))
    fleet.central.report("dev-a")  # known to central, with health from before the update
    legacy = fleet.root("dev-a") / "var/cache/city-kiosk/deploy/r1"  # staged by old releases
    legacy.mkdir(parents=True)
    (legacy / "bundle.tar.gz").write_bytes(b"an old bundle with the device key")
    with HealthyDevice(fleet, "dev-a", "r2"):
        done = playbook("rollout.yml", inventory, "-e", "city_kiosk_release=r2")
        assert done.returncode == 0, done.stdout + done.stderr
        assert fleet.link("dev-a") == "releases/r2"
        assert fleet.link("dev-a", "previous") == "releases/r1"
        assert fleet.installer_calls("dev-a")[-1] == {
            "release": "r2", "skip_apt": True, "ca_fingerprint": fleet.ca_fingerprint()
        }  # fmt: skip
        # No bundle (the device's private key) is left on the device.
        assert not list(fleet.root("dev-a").rglob("bundle.tar.gz"))
        assert not (fleet.root("dev-a") / "var/lib/city-kiosk-deploy/r2").exists()
        assert (fleet.root("dev-a") / "etc" / "city-kiosk" / "device.toml").exists()
        # Again: r2 is active already, so the installer is not run a second time.
        calls = len(fleet.installer_calls("dev-a"))
        again = playbook("rollout.yml", inventory, "-e", "city_kiosk_release=r2")
        assert again.returncode == 0, again.stdout
        assert len(fleet.installer_calls("dev-a")) == calls
        assert "Wait for the device to report healthy" in again.stdout


def test_rollout_rolls_back_a_device_that_never_reports_healthy(fleet: Fleet) -> None:
    inventory = fleet.inventory(fleet.device_groups(*DEVICES))
    for device in DEVICES:  # online, but its last health is older than the update
        fleet.central.report(device)
    done = playbook("rollout.yml", inventory, "-e", "city_kiosk_release=r2")
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    # The canary installed r2, never reported, and is back on r1.
    assert [c["release"] for c in fleet.installer_calls("dev-a")] == ["r2"]
    assert fleet.link("dev-a") == "releases/r1", output
    assert "it was rolled back to its previous release" in output
    # The rollout stopped: the second device was never touched.
    assert fleet.installer_calls("dev-b") == []
    assert fleet.link("dev-b") == "releases/r1"
    assert not (fleet.root("dev-b") / "opt" / "city-kiosk" / "releases" / "r2").exists()


def test_rollout_device_offline_in_central_is_rolled_back(fleet: Fleet) -> None:
    inventory = fleet.inventory(fleet.device_groups("dev-a"))
    fleet.central.report("dev-a", online=False, health=False)
    with HealthyDevice(fleet, "dev-a", "never"):  # reports nothing for r2
        done = playbook("rollout.yml", inventory, "-e", "city_kiosk_release=r2")
    assert done.returncode != 0
    assert fleet.link("dev-a") == "releases/r1"


def test_rollout_refuses_without_release_name(fleet: Fleet) -> None:
    inventory = fleet.inventory(fleet.device_groups("dev-a"))
    fleet.central.report("dev-a")
    done = playbook("rollout.yml", inventory)
    assert done.returncode != 0
    assert "pass -e city_kiosk_release=NAME" in done.stdout
    assert fleet.installer_calls("dev-a") == []


def test_rollout_refuses_without_pinned_ca_fingerprint(fleet: Fleet) -> None:
    """Without the pin the role installs nothing (the installer would take a
    bundle of any CA on a new device), and the device is not rolled back."""
    inventory = fleet.inventory(fleet.device_groups("dev-a"), city_kiosk_ca_fingerprint="")
    fleet.central.report("dev-a")
    done = playbook("rollout.yml", inventory, "-e", "city_kiosk_release=r2")
    assert done.returncode != 0
    assert "set city_kiosk_ca_fingerprint in the inventory" in done.stdout
    assert "did not install the release" in done.stdout
    assert fleet.installer_calls("dev-a") == []
    assert fleet.link("dev-a") == "releases/r1"


def broker_process(conf: Path, port: int, log: Path) -> ServiceProcess:
    """mosquitto with the config site.yml wrote, only its port, persistence and
    log moved; started as root without a ``user`` line it drops to the
    ``mosquitto`` user before loading certificates, like the system service."""
    text = (
        conf.read_text()
        .replace("listener 8883", f"listener {port} 127.0.0.1")
        .replace("persistence true", "persistence false")
        .replace("log_dest syslog", "log_dest stdout")
    )
    runnable = conf.with_name("test.conf")
    runnable.write_text(text)
    process = ServiceProcess("mosquitto", ["mosquitto", "-c", str(runnable)], log)
    process.start()
    return process


def broker_up(process: ServiceProcess, port: int) -> None:
    wait_until(lambda: process.check_alive() and port_open(port), 10, "mosquitto to listen")


@pytest.fixture
def open_root() -> Iterator[Path]:
    """A target root the ``mosquitto`` user may traverse (pytest's are 0700)."""
    root = Path(tempfile.mkdtemp(prefix="broker-root-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root)


def test_site_provisions_broker_central_and_device(fleet: Fleet, open_root: Path) -> None:
    """site.yml for all three after ``provision --rotate`` of dev-a (stolen,
    say). The attack: dev-a's old identity connects to the broker site.yml
    installed -- refused, the CRL went out with it; the new one connects.
    Central derives the code key dev-a's bundle holds and knows dev-a only."""
    central_root = fleet.folder / "targets" / "central"
    groups = {
        **fleet.device_groups("dev-a"),
        "broker": {"hosts": {"broker-1": {"city_kiosk_root": str(open_root)}}},
        "central": {"hosts": {"central-1": {"city_kiosk_root": str(central_root)}}},
    }
    request = ProvisionRequest(fleet.fleet, "dev-a", "fac-1", "door", [DoorSpec.parse("a:17")])
    identity = fleet.fleet / "devices" / "dev-a"
    old = fleet.folder / "old-identity"
    shutil.copytree(identity, old)
    rotated = provision(dataclasses.replace(request, rotate=True))
    assert rotated.revoked_serial is not None
    done = playbook("site.yml", fleet.inventory(groups), "-e", "city_kiosk_release=r2")
    assert done.returncode == 0, done.stdout + done.stderr
    # Broker: the fleet's config with this machine's paths, every file there.
    conf = open_root / "etc" / "mosquitto" / "mosquitto.conf"
    folder = open_root / "etc" / "mosquitto" / "city-kiosk"
    text = conf.read_text()
    for key, name in (("cafile", "ca.pem"), ("certfile", "server.pem"), ("keyfile", "server.key"),
                      ("acl_file", "acl"), ("crlfile", "crl.pem")):  # fmt: skip
        assert f"{key} {folder / name}\n" in text
        assert (folder / name).is_file()
    assert "require_certificate true" in text
    assert "user dev-a" in (folder / "acl").read_text()
    # Central: its config is valid for central itself; the key it derives is
    # the one in the facility's bundle; the inventory's device is registered.
    config_path = central_root / "etc" / "kiosk-central" / "central.toml"
    check = subprocess.run(
        [sys.executable, "-m", "central", "config", "--config", str(config_path)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    config = central_config(config_path)
    device_key = code_key(device_config(rotated.folder / bundle.CONFIG))
    central_key = central_code_key(config)("fac-1")
    assert code_hash(central_key, "fac-1", "482913") == code_hash(device_key, "fac-1", "482913")
    # Remote commands: central signs with the key whose public half is in the bundle.
    signing = config.commands.signing_key_file
    assert signing is not None and signing.stat().st_mode & 0o777 == 0o600
    private = load_pem_private_key(signing.read_bytes(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    bundle_keys = device_config(rotated.folder / bundle.CONFIG).commands.public_key_file
    assert list(load_command_keys(bundle_keys)) == [key_id(private.public_key())]
    with Database(config.database.url) as db:
        assert IngestStore(db, "test").device_facility("dev-a") == "fac-1"
        assert IngestStore(db, "test").device_facility("dev-b") is None  # not in this inventory
    assert (central_root / "etc" / "systemd" / "system" / "kiosk-central-serve.service").exists()
    # Device: the new release is active.
    assert fleet.link("dev-a") == "releases/r2"
    # The broker, as its own user, on the files site.yml installed.
    port = free_port()
    broker = Mosquitto.__new__(Mosquitto)
    broker.tls_port = port
    ca = folder / "ca.pem"
    process = broker_process(conf, port, fleet.folder / "broker.log")
    try:
        broker_up(process, port)
        with pytest.raises((ServiceError, OSError)):
            connect(broker, ClientIdentity("dev-a", old / "device.pem", old / "device.key", ca),
                    timeout=3).close()  # fmt: skip
        connect(broker, ClientIdentity("dev-a", identity / "device.pem",
                                       identity / "device.key", ca)).close()  # fmt: skip
    finally:
        process.stop()
    # The key as the fleet folder keeps it (0600 root): mosquitto cannot load it.
    (folder / "server.key").chmod(0o600)
    os.chown(folder / "server.key", 0, 0)
    refused = broker_process(conf, free_port(), fleet.folder / "broker-0600.log")
    try:
        wait_until(lambda: not refused.alive(), 10, "mosquitto to give up on the key")
        assert "Permission denied" in refused.tail()
    finally:
        refused.stop()
