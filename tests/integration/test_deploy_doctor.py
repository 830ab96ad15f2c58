"""``python -m deploy doctor`` against real services: mosquitto with mutual
TLS and the device's identity, lockctl on mock pins on a temp socket, the
device store, pcscd with the virtual reader, and the real central API over
TLS. First everything green, then each check made to fail once, asserting
the exit code, the JSON report and the advice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cardreader.sim.cards import UidCard
from cardreader.sim.vpcd import VpcdLink
from deploy import pki
from lockctl.client import LockClient
from lockctl.errors import LockctlError
from sync.outbox import Outbox
from sync.store import open_store
from tests.harness import clockrun
from tests.harness.central_api import CentralApi
from tests.harness.mosquitto import Mosquitto
from tests.harness.pcscd import Pcscd
from tests.harness.services import ServiceProcess, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
DEVICE = "dev-a"
MEMBER_UID = bytes.fromhex("012E4CD2A1B2C3D4")
CONFIG = """\
[device]
id = "dev-a"
facility = "fac-1"
role = "counter"
[store]
path = "{folder}/device.db"
[reader]
name = "Virtual PCD 00 00"
[lock]
socket = "{folder}/run/lockctl.sock"
pin_factory = "mock"
sample_interval_seconds = 0.02
[[doors]]
id = "room-a"
relay_pin = 17
contact_pin = 27
exit_button_pin = 22
[[doors]]
id = "room-b"
relay_pin = 25
[broker]
host = "localhost"
port = {broker_port}
[broker.tls]
ca_file = "{ca}"
cert_file = "{cert}"
key_file = "{key}"
[central]
url = "{central}"
[issuance]
payment_backend = "sim"
printer_backend = "file"
[voice]
device = "null"
cache_dir = "{folder}/voice-cache"
"""


@dataclass
class Device:
    folder: Path
    config: Path
    text: str
    env: dict[str, str]
    lockctl: ServiceProcess
    central: CentralApi

    def variant(self, tmp_path: Path, old: str, new: str) -> Path:
        """A copy of the device config with one change (the services stay as they are)."""
        assert old in self.text, old
        path = tmp_path / "device.toml"
        path.write_text(self.text.replace(old, new, 1))
        return path


@pytest.fixture(scope="module")
def device(
    tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto, pcscd: Pcscd
) -> Iterator[Device]:
    folder = tmp_path_factory.mktemp("device")
    ident = mosquitto.identity(DEVICE)
    server = pki.issue(mosquitto.ca, "localhost", server_names=["localhost"], client=False)
    server.write(folder / "central.pem", folder / "central.key")
    central = CentralApi(
        folder / "central.db", tls=(folder / "central.pem", folder / "central.key")
    )
    central.start()
    text = CONFIG.format(
        folder=folder, broker_port=mosquitto.tls_port, ca=ident.ca, cert=ident.cert,
        key=ident.key, central=central.url,
    )  # fmt: skip
    config = folder / "device.toml"
    config.write_text(text)
    open_store(folder / "device.db").close()
    (folder / "voice-cache").mkdir()  # built, empty: the voice check is unit-tested
    (folder / "voice-cache" / "manifest.json").write_text('{"voices": [], "files": []}')
    lockctl = ServiceProcess(
        "lockctl", [sys.executable, "-m", "lockctl", "serve", "--config", str(config)],
        folder / "lockctl.log", env={"PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    lockctl.start()

    def answers() -> bool:
        lockctl.check_alive()
        try:
            with LockClient(folder / "run" / "lockctl.sock", timeout=2) as client:
                client.status()
            return True
        except LockctlError:
            return False

    wait_until(answers, 20, "lockctl to answer")
    env = {**os.environ, **pcscd.env, "PYTHONPATH": str(ROOT)}
    yield Device(folder, config, text, env, lockctl, central)
    lockctl.stop()
    central.stop()


def doctor(
    config: Path, env: dict[str, str], *extra: str, stdin: str = "", clock_trusted: bool = True
) -> tuple[int, dict[str, Any], str]:
    """Run the real CLI with --json (the clock's trust injected); returns
    (exit code, report, stderr)."""
    done = subprocess.run(
        clockrun.argv(clock_trusted, "deploy", "doctor", "--config", str(config), "--json",
                      "--timeout", "5", *extra),
        capture_output=True, text=True, env=env, input=stdin, timeout=120, check=False,
    )  # fmt: skip
    try:
        report = json.loads(done.stdout)
    except ValueError:
        raise AssertionError(f"not JSON:\n{done.stdout}\n{done.stderr}") from None
    return done.returncode, report, done.stderr


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"]}


def failed(report: dict[str, Any]) -> set[str]:
    return {c["name"] for c in report["checks"] if c["status"] == "fail"}


def test_doctor_all_green_against_running_services(device: Device) -> None:
    code, report, _ = doctor(device.config, device.env)
    checks = by_name(report)
    assert code == 0, report
    assert report["ok"] is True and report["device"] == DEVICE
    assert {n: c["status"] for n, c in checks.items()} == {
        "config": "ok", "gpio_pins": "warn", "reader": "ok", "lock": "ok", "keypad": "ok",
        "broker": "ok", "central": "ok", "clock": "ok", "disk": "ok", "store": "ok",
        # No systemd in the test container: not applicable, a warning only.
        "services": "warn", "watchdog": "warn", "voice": "ok", "translations": "ok",
    }  # fmt: skip
    assert "mock" in checks["gpio_pins"]["finding"]
    assert "CONNACK accepted" in checks["broker"]["finding"]
    assert "room-a locked" in checks["lock"]["finding"]
    assert "Virtual PCD 00 00" in checks["reader"]["finding"]
    assert "not applicable" in checks["services"]["finding"]


def test_doctor_table_for_people_is_aligned(device: Device) -> None:
    done = subprocess.run(
        clockrun.argv(True, "deploy", "doctor", "--config", str(device.config)),
        capture_output=True, text=True, env=device.env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["CHECK", "STATUS", "FINDING"]
    column = lines[0].index("STATUS")
    rows = [line for line in lines[1:] if line and not line.startswith(" ") and " " in line]
    assert all(line[column:].split()[0] in {"ok", "WARN", "FAIL"} for line in rows[:12])
    assert "READY: no check failed" in done.stdout


def test_doctor_bad_config_names_file_and_key(device: Device, tmp_path: Path) -> None:
    config = device.variant(tmp_path, "[store]\n", "[store]\npaht = 1\n")
    code, report, _ = doctor(config, device.env)
    check = by_name(report)["config"]
    assert code == 1 and report["ok"] is False
    assert check["status"] == "fail"
    assert str(config) in check["finding"] and "store.paht: unknown key" in check["finding"]
    assert "docs/configuration.md" in check["action"]
    # Checks that need the config say so instead of failing on their own.
    assert by_name(report)["broker"]["finding"].startswith("not checked")


def test_doctor_wrong_gpio_pin_gives_one_clear_message(device: Device, tmp_path: Path) -> None:
    config = device.variant(tmp_path, "relay_pin = 25", "relay_pin = 40")
    code, report, _ = doctor(config, device.env)
    checks = by_name(report)
    assert code == 1
    assert failed(report) >= {"config", "gpio_pins"}
    assert checks["gpio_pins"]["finding"] == (
        "wrong GPIO pin in config: doors[1].relay_pin = 40: there is no GPIO40 on the 40-pin"
        " header (BCM numbers 0-27, not physical pin numbers)"
    )
    # The config check names the file (its temp path may hold any digits), then
    # points to gpio_pins instead of repeating the pin.
    config_finding = checks["config"]["finding"].replace(str(config), "<file>")
    assert config_finding == "<file> invalid: 1 GPIO pin problem(s): see gpio_pins"
    assert "docs/hardware.md" in checks["gpio_pins"]["action"]


def test_doctor_gpio_pin_conflict_and_boot_pull_up(device: Device, tmp_path: Path) -> None:
    config = device.variant(tmp_path, "relay_pin = 25", "relay_pin = 4")
    code, report, _ = doctor(config, device.env)
    finding = by_name(report)["gpio_pins"]["finding"]
    assert code == 1 and "GPIO4 is pulled up at power-up" in finding
    config = device.variant(tmp_path, "relay_pin = 25", "relay_pin = 27")
    code, report, _ = doctor(config, device.env)
    assert code == 1
    assert (
        "GPIO27 is already used by doors[0].contact_pin" in by_name(report)["gpio_pins"]["finding"]
    )


def test_doctor_pcscd_down(device: Device) -> None:
    env = {**device.env, "PCSCLITE_CSOCK_NAME": str(device.folder / "no-pcscd.comm")}
    code, report, _ = doctor(device.config, env)
    check = by_name(report)["reader"]
    assert code == 1 and failed(report) == {"reader"}
    assert "pcscd" in check["finding"] and "systemctl start pcscd" in check["action"]


def test_doctor_no_matching_reader(device: Device, tmp_path: Path) -> None:
    config = device.variant(tmp_path, 'name = "Virtual PCD 00 00"', 'name = "RC-S300"')
    code, report, _ = doctor(config, device.env)
    check = by_name(report)["reader"]
    assert code == 1 and failed(report) == {"reader"}
    assert "no card reader matching reader.name 'RC-S300'" in check["finding"]
    assert "Virtual PCD 00 00" in check["finding"] and "USB" in check["action"]


def test_doctor_card_test_reports_the_kind_only(device: Device, pcscd: Pcscd) -> None:
    link = VpcdLink(UidCard(MEMBER_UID), port=pcscd.ports[0])
    link.insert()
    try:
        code, report, err = doctor(device.config, device.env, "--card-test", "--card-wait", "10")
    finally:
        link.remove()
    check = by_name(report)["reader"]
    assert code == 0, report
    assert check["finding"].endswith("card test read a felica card")
    assert check["details"]["card"] == "felica"
    assert "place a card" in err
    everything = json.dumps(report) + err
    assert MEMBER_UID.hex() not in everything.lower()


def test_doctor_card_test_without_card_fails(device: Device) -> None:
    code, report, _ = doctor(device.config, device.env, "--card-test", "--card-wait", "0.5")
    assert code == 1 and "no card was presented" in by_name(report)["reader"]["finding"]


def test_doctor_lockctl_not_running(device: Device, tmp_path: Path) -> None:
    config = device.variant(tmp_path, "run/lockctl.sock", "run/nobody.sock")
    code, report, _ = doctor(config, device.env)
    check = by_name(report)["lock"]
    assert code == 1 and failed(report) == {"lock"}
    assert "does not answer" in check["finding"]
    assert "journalctl -u city-kiosk-lockctl" in check["action"]


def test_doctor_relay_click_after_yes(device: Device) -> None:
    code, report, _ = doctor(device.config, device.env, "--relay-click", "room-a", "--yes")
    assert code == 0, report
    assert "relay click on room-a: unlocked and relocked" in by_name(report)["lock"]["finding"]
    with open_store(device.folder / "device.db") as store:
        events = [e.to_wire() for e in Outbox(store).pending(limit=1000)]
    unlocked = [e for e in events if e["type"] == "door.unlocked"]
    assert unlocked and unlocked[-1]["data"]["reason"] == "staff"


def test_doctor_relay_click_needs_confirmation(device: Device) -> None:
    # No terminal and no --yes: nothing is unlocked, the row says why.
    code, report, err = doctor(device.config, device.env, "--relay-click", "room-b")
    check = by_name(report)["lock"]
    assert code == 0 and check["status"] == "warn"
    assert "not confirmed" in check["finding"] and "--yes" in err
    code, report, _ = doctor(device.config, device.env, "--relay-click", "room-z", "--yes")
    assert code == 1 and "no such door" in by_name(report)["lock"]["finding"]


def test_doctor_broker_down(device: Device, tmp_path: Path) -> None:
    port = str(free_port())
    config = device.variant(tmp_path, f"port = {device.text.split('port = ')[1].split()[0]}",
                            f"port = {port}")  # fmt: skip
    code, report, _ = doctor(config, device.env)
    check = by_name(report)["broker"]
    assert code == 1 and failed(report) == {"broker"}
    assert "connection refused" in check["finding"] and "port" in check["action"]


def test_doctor_broker_dns_failure(device: Device, tmp_path: Path) -> None:
    config = device.variant(tmp_path, 'host = "localhost"', 'host = "broker.invalid"')
    code, report, _ = doctor(config, device.env)
    check = by_name(report)["broker"]
    assert code == 1 and "cannot be resolved (DNS)" in check["finding"]


def test_doctor_broker_wrong_ca(device: Device, tmp_path: Path) -> None:
    other = pki.create_ca("Another CA")
    pki.write_cert(other.cert, tmp_path / "other-ca.pem")
    ca = device.text.split('ca_file = "')[1].split('"')[0]
    config = device.variant(
        tmp_path, f'ca_file = "{ca}"', f'ca_file = "{tmp_path / "other-ca.pem"}"'
    )
    code, report, _ = doctor(config, device.env)
    check = by_name(report)["broker"]
    assert code == 1 and "broker" in failed(report)
    assert "certificate is not trusted" in check["finding"] and "fleet CA" in check["action"]


def test_doctor_device_certificate_not_accepted(device: Device, tmp_path: Path) -> None:
    # A certificate with the right name from another CA: the broker hangs up.
    other = pki.create_ca("Another CA")
    pki.issue(other, DEVICE).write(tmp_path / "dev.pem", tmp_path / "dev.key")
    cert = device.text.split('cert_file = "')[1].split('"')[0]
    key = device.text.split('key_file = "')[1].split('"')[0]
    text = device.text.replace(cert, str(tmp_path / "dev.pem")).replace(
        key, str(tmp_path / "dev.key")
    )
    config = tmp_path / "device.toml"
    config.write_text(text)
    code, report, _ = doctor(config, device.env)
    check = by_name(report)["broker"]
    assert code == 1
    assert "did not accept the device certificate" in check["finding"], check


def test_doctor_certificate_of_another_device(
    device: Device, tmp_path: Path, mosquitto: Mosquitto
) -> None:
    config = device.variant(tmp_path, 'id = "dev-a"', 'id = "dev-b"')
    code, report, _ = doctor(config, device.env)
    check = by_name(report)["broker"]
    assert code == 1 and "issued to 'dev-a', not to this device 'dev-b'" in check["finding"]


def test_doctor_central_unreachable(device: Device, tmp_path: Path) -> None:
    config = device.variant(tmp_path, device.central.url, f"https://localhost:{free_port()}")
    code, report, _ = doctor(config, device.env)
    check = by_name(report)["central"]
    assert code == 1 and failed(report) == {"central"}
    assert "connection refused" in check["finding"]


def test_doctor_clock_untrusted(device: Device) -> None:
    code, report, _ = doctor(device.config, device.env, clock_trusted=False)
    check = by_name(report)["clock"]
    assert code == 1 and failed(report) == {"clock"}
    assert "not synchronised" in check["finding"] and "timedatectl" in check["action"]


def test_doctor_store_corrupt(device: Device, tmp_path: Path) -> None:
    (tmp_path / "device.db").write_bytes(b"this is not a database" * 100)
    config = device.variant(tmp_path, f"{device.folder}/device.db", str(tmp_path / "device.db"))
    code, report, _ = doctor(config, device.env)
    check = by_name(report)["store"]
    assert code == 1 and failed(report) == {"store"}
    assert (
        "damaged or not a SQLite database" in check["finding"]
        and "move the file aside" in (check["action"])
    )


def test_doctor_store_missing_is_not_created(device: Device, tmp_path: Path) -> None:
    config = device.variant(tmp_path, f"{device.folder}/device.db", str(tmp_path / "device.db"))
    code, report, _ = doctor(config, device.env)
    assert code == 1 and "does not exist yet" in by_name(report)["store"]["finding"]
    assert not (tmp_path / "device.db").exists()


def test_doctor_store_on_read_only_disk(device: Device, tmp_path: Path) -> None:
    """The SD card remounted read-only: a bind mount made read-only, in a
    private mount namespace of the doctor process only."""
    data = tmp_path / "data"
    data.mkdir()
    open_store(data / "device.db").close()
    config = device.variant(tmp_path, f"{device.folder}/device.db", str(data / "device.db"))
    script = (
        f"mount --bind {data} {data} && mount -o remount,bind,ro {data} && "
        f"exec {sys.executable} -m tests.harness.clockrun trusted deploy doctor"
        f" --config {config} --json"
    )
    namespace = "-m" if os.geteuid() == 0 else "-Urm"
    done = subprocess.run(
        ["unshare", namespace, "sh", "-c", script],
        capture_output=True, text=True, env=device.env, timeout=120, check=False,
    )  # fmt: skip
    report = json.loads(done.stdout)
    check = by_name(report)["store"]
    assert done.returncode == 1 and failed(report) == {"store"}, report
    assert "cannot be written" in check["finding"], check
    assert "read-only" in check["action"]
