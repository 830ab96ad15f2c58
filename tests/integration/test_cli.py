"""The spine's command lines: help for every package, clear errors and exit
codes for bad input, a structured log line, and the demo."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from cardreader.credential import load_key, member_reference
from cardreader.sim.profiles import DEMO_FELICA_IDM
from contracts.reservations_hash import facility_code_key
from demo.bookings import DEMO_EMAIL, DEMO_MEMBER
from sync.config import load_config
from sync.store import MIGRATION_SET, open_store

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["kiosk", "lockctl", "cardreader", "sync", "central", "deploy", "demo"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env=env, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("package", PACKAGES)
def test_cli_every_package_has_help(package: str) -> None:
    result = run(package, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


def json_log_lines(stderr: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_cli_missing_config_exit_3(tmp_path: Path) -> None:
    result = run("sync", "config", "--config", str(tmp_path / "absent.toml"))
    assert result.returncode == 3
    assert "absent.toml" in result.stderr
    assert "Traceback" not in result.stderr
    logged = json_log_lines(result.stderr)
    assert logged[0]["msg"] == "configuration invalid"


def test_cli_malformed_config_names_key(tmp_path: Path) -> None:
    config = tmp_path / "device.toml"
    config.write_text('[device]\nid = "x"\nfacility = "y"\n[lock]\nmax_unlock_seconds = "long"\n')
    result = run("sync", "config", "--config", str(config))
    assert result.returncode == 3
    assert "lock.max_unlock_seconds" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_store_too_new_exit_4(tmp_path: Path) -> None:
    db = tmp_path / "device.db"
    open_store(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES (?, ?, ?)",
            (MIGRATION_SET, "m200_newer", "2031-01-01"),
        )
    config = tmp_path / "device.toml"
    config.write_text('[device]\nid = "x"\nfacility = "y"\n[store]\npath = "device.db"\n')
    result = run("sync", "store-check", "--config", str(config))
    assert result.returncode == 4
    assert "newer version" in result.stderr
    assert str(db) in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_corrupt_store_exit_4(tmp_path: Path) -> None:
    (tmp_path / "device.db").write_bytes(b"\x00garbage" * 1000)
    config = tmp_path / "device.toml"
    config.write_text('[device]\nid = "x"\nfacility = "y"\n')
    result = run("sync", "outbox", "--config", str(config))
    assert result.returncode == 4
    assert "damaged or not a SQLite database" in result.stderr


def test_cli_append_refuses_personal_data(tmp_path: Path) -> None:
    config = tmp_path / "device.toml"
    config.write_text('[device]\nid = "x"\nfacility = "y"\n')
    result = run(
        "sync", "append", "test.ping", "--data", '{"name": "Yamada"}', "--config", str(config)
    )
    assert result.returncode == 1
    assert "personal data" in result.stderr
    assert "Yamada" not in result.stderr.split("error:")[0]  # not in the log line
    ok = run("sync", "append", "test.ping", "--data", '{"door": "a"}', "--config", str(config))
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["seq"] == 1


def test_cli_kiosk_without_credential_key_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "device.toml"
    config.write_text('[device]\nid = "x"\nfacility = "y"\n[[doors]]\nid = "a"\nrelay_pin = 17\n')
    result = run("kiosk", "--config", str(config), "--headless")
    assert result.returncode == 3, result.stderr
    message = result.stderr.split("error: ", 1)[1]
    assert f"{config}:\n  - reader.credential_key_file: required" in message
    assert "Traceback" not in result.stderr


def test_cli_device_commands_need_a_config_and_kiosk_has_no_demo() -> None:
    for args in (["kiosk"], ["sync", "run"], ["lockctl", "serve"], ["kiosk", "demo"]):
        result = run(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert "--config" in result.stderr
    for flag in ("--dev-panel", "--pki-dir", "--measure-startup", " demo"):
        assert flag not in run("kiosk", "--help").stdout


def test_cli_demo_runs_with_its_own_config(tmp_path: Path) -> None:
    result = run("demo", "--once", "--state-dir", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dashboard      : http://127.0.0.1:" in result.stdout
    assert "integrity ok" in result.stdout
    assert (tmp_path / "device.db").exists()
    key = (tmp_path / "credential.key").read_text().strip()
    assert len(bytes.fromhex(key)) == 32  # the demo's own key, named by its configs
    # Central holds the code master key; the door only its facility's key.
    central_toml = (tmp_path / "central.toml").read_text()
    assert str(tmp_path / "code-master.key") in central_toml
    assert "credential.key" not in central_toml
    master = load_key(tmp_path / "code-master.key")
    assert load_key(tmp_path / "code.key") == facility_code_key(master, "demo-gym")
    logs = {p.name for p in (tmp_path / "logs").iterdir()}
    assert {"mosquitto.log", "central-api.log", "lockctl.log", "sync-agent.log"} <= logs
    assert_demo_booking_on_device(tmp_path, result.stdout)
    assert_booking_site_mails(tmp_path, result.stdout)
    assert_door_enrolment(tmp_path, result.stdout)


def assert_demo_booking_on_device(state: Path, stdout: str) -> None:
    """The booking the demo made with central's booking service (for the demo
    member, at the door, opening it now) is in the device's cache with the
    demo member card's reference, as the device computes it."""
    with sqlite3.connect(state / "central.db") as central:
        rows = central.execute(
            "SELECT b.reservation_id, b.door, b.starts_at, b.ends_at, b.source FROM bookings b"
            " JOIN members m ON m.id = b.member_id WHERE m.email = ? AND b.status = 'booked'",
            (DEMO_EMAIL,),
        ).fetchall()
    assert len(rows) == 1, rows
    reservation_id, door, starts, ends = rows[0][:4]
    assert door == "room-a" and rows[0][4] == "staff"
    now = datetime.now(UTC).replace(tzinfo=None)
    assert (
        datetime.fromisoformat(starts) - timedelta(minutes=10) <= now < datetime.fromisoformat(ends)
    )
    key = load_key(state / "credential.key")
    with sqlite3.connect(state / "device.db") as device:
        refs = {r[0] for r in device.execute(
            "SELECT c.credential_ref FROM reservation_credentials c JOIN reservations r"
            " ON r.id = c.reservation_id WHERE r.id = ? AND r.status = 'active' AND r.door = ?",
            (reservation_id, door))}  # fmt: skip
    assert member_reference(key, DEMO_FELICA_IDM) in refs
    assert len(refs) == 2  # and the demo My Number Card's
    assert "the demo booking is on the device" in stdout
    assert f"member         : {DEMO_MEMBER}" in stdout


def assert_booking_site_mails(state: Path, stdout: str) -> None:
    """``--once`` asked the site at /booking/ for a sign-in mail for the demo
    member: the local sink saved it as an .eml with its 6-digit code and
    printed the code on the console."""
    site = re.search(r"booking site   : (http://127\.0\.0\.1:\d+/booking/)", stdout)
    assert site, stdout
    assert f"sign in as {DEMO_EMAIL}" in stdout
    mails = sorted((state / "mail").glob("*.eml"))
    assert len(mails) == 1, mails
    message = message_from_bytes(mails[0].read_bytes(), policy=policy.default)
    assert message["To"] == DEMO_EMAIL
    code = re.search(r"\b(\d{6})$", str(message["Subject"]))
    assert code, message["Subject"]
    body = message.get_body(("plain",))
    assert body is not None and "/booking/sign-in/link/" in body.get_content()
    assert f"@ mail to {DEMO_EMAIL}: " in stdout
    assert f"sign-in code {code.group(1)} ({mails[0]})" in stdout


def assert_door_enrolment(state: Path, stdout: str) -> None:
    """The door device's written config enables card enrolment with central's
    device listener and the door's own fleet certificate, and validates."""
    config = load_config(state / "device.toml")
    assert config.enrolment.enabled
    # The running demo's door opens on a machine whose clock is not synchronised.
    assert config.policy.on_untrusted_clock == "allow"
    assert config.central.url.startswith("https://127.0.0.1:")
    assert config.central.tls is not None
    for path in (config.central.tls.ca_file, config.central.tls.cert_file,
                 config.central.tls.key_file):  # fmt: skip
        assert path.is_file(), path
    assert config.central.tls.cert_file.parent.name == config.device.id
    assert load_config(state / "counter.toml").enrolment.enabled
    assert "F9 a new member card to enrol" in stdout
    assert "staff bookings : http://127.0.0.1:" in stdout


def test_cli_sync_reservations_shows_the_cache(tmp_path: Path) -> None:
    config = tmp_path / "device.toml"
    config.write_text('[device]\nid = "x"\nfacility = "y"\n')
    text = run("sync", "reservations", "--config", str(config))
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("facility y: version 0, synced never")
    as_json = run("sync", "reservations", "--json", "--config", str(config))
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert (report["facility"], report["version"], report["doors"]) == ("y", 0, [])
