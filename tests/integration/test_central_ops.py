"""Central ops storage on SQLite and PostgreSQL: staff sign-in (password +
TOTP, lockout, sessions), alert lifecycle, health history compaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import insert

from central.db.engine import Database, utc
from central.db.tables import devices
from central.ops.alerts import AlertEngine, AlertThresholds, Transition
from central.ops.service import AlertStore, HealthHistory, Retention, evaluate_round
from central.ops.staff import AccountLocked, SignInFailed, StaffError, StaffStore

T0 = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


def code_at(secret: str, moment: datetime) -> str:
    return pyotp.TOTP(secret).at(moment)


def test_staff_sign_in_with_totp_and_session(central_db: Database) -> None:
    staff = StaffStore(central_db)
    secret = staff.create("aoki", PASSWORD, "operator")
    token, session = staff.sign_in("aoki", PASSWORD, code_at(secret, T0), T0)
    assert session.role == "operator" and session.may("viewer") and not session.may("admin")
    found = staff.session(token, T0 + timedelta(hours=1))
    assert found is not None and found.csrf == session.csrf
    assert staff.session(token, T0 + timedelta(hours=9)) is None  # expired
    assert staff.session("forged-token", T0) is None
    staff.sign_out(token)
    assert staff.session(token, T0) is None


def test_staff_totp_code_used_once_and_wrong_factors_fail_alike(central_db: Database) -> None:
    staff = StaffStore(central_db)
    secret = staff.create("aoki", PASSWORD, "viewer")
    code = code_at(secret, T0)
    staff.sign_in("aoki", PASSWORD, code, T0)
    with pytest.raises(SignInFailed, match="sign-in failed"):
        staff.sign_in("aoki", PASSWORD, code, T0 + timedelta(seconds=5))  # replayed
    with pytest.raises(SignInFailed, match="sign-in failed"):
        staff.sign_in(
            "aoki",
            "wrong password!!",
            code_at(secret, T0 + timedelta(minutes=1)),
            T0 + timedelta(minutes=1),
        )
    with pytest.raises(SignInFailed, match="sign-in failed"):
        staff.sign_in("nobody", PASSWORD, "123456", T0)


def test_staff_lockout_after_failures(central_db: Database) -> None:
    staff = StaffStore(central_db)
    secret = staff.create("aoki", PASSWORD, "admin")
    for i in range(4):
        with pytest.raises(SignInFailed):
            staff.sign_in("aoki", PASSWORD, "000000", T0 + timedelta(seconds=i))
    with pytest.raises(AccountLocked):
        staff.sign_in("aoki", PASSWORD, "000000", T0 + timedelta(seconds=5))
    later = T0 + timedelta(minutes=2)
    with pytest.raises(AccountLocked):  # even the right code while locked
        staff.sign_in("aoki", PASSWORD, code_at(secret, later), later)
    after = T0 + timedelta(minutes=16)
    staff.sign_in("aoki", PASSWORD, code_at(secret, after), after)


def test_staff_rules_for_accounts(central_db: Database) -> None:
    staff = StaffStore(central_db)
    with pytest.raises(StaffError):
        staff.create("x", "short", "viewer")
    with pytest.raises(StaffError):
        staff.create("x", PASSWORD, "root")


def test_alerts_lifecycle_open_ack_resolve(central_db: Database) -> None:
    store = AlertStore(central_db)
    opened = Transition("dev-a", "cpu_hot", True, "CPU at 82 °C", T0)
    [alert_id] = store.apply([opened, opened])  # a second open of a live alert is ignored
    assert store.acknowledge(alert_id, "aoki", T0 + timedelta(minutes=1))
    assert not store.acknowledge(alert_id, "aoki", T0 + timedelta(minutes=2))
    [row] = store.listing()
    assert (row["state"], row["acknowledged_by"]) == ("acknowledged", "aoki")
    assert store.firing() == [("dev-a", "cpu_hot")]
    store.apply([Transition("dev-a", "cpu_hot", False, "recovered", T0 + timedelta(minutes=9))])
    assert store.listing()[0]["state"] == "resolved" and store.firing() == []
    assert store.open_counts() == {}


def test_alerts_round_over_fleet_table(central_db: Database) -> None:
    with central_db.write() as conn:
        conn.execute(insert(devices).values(
            id="dev-hot", facility="gym", status="online", session=1, last_seen=utc(T0),
            versions={}, health={"cpu_temp_c": 90.0}, health_at=utc(T0),
        ))  # fmt: skip
    engine = AlertEngine(AlertThresholds(fire_after_s=0))
    sent: list[Transition] = []

    class Collect:
        def send(self, transition: Transition) -> None:
            sent.append(transition)

    transitions = evaluate_round(central_db, engine, AlertStore(central_db), [Collect()], T0)
    assert [(t.device, t.rule) for t in transitions] == [("dev-hot", "cpu_hot")]
    assert sent == transitions
    assert AlertStore(central_db).open_counts() == {"dev-hot": 1}


def test_health_history_compacts_and_expires(central_db: Database) -> None:
    history = HealthHistory(central_db, Retention(raw=timedelta(days=2), hourly=timedelta(days=10)))
    old = T0 - timedelta(days=3)
    for minute in range(0, 60, 10):
        history.record(
            "dev-a", old + timedelta(minutes=minute), {"cpu_temp_c": 40.0 + minute, "bad": "x"}
        )
    history.record("dev-a", T0 - timedelta(days=30), {"cpu_temp_c": 1.0})
    history.record("dev-a", T0, {"cpu_temp_c": 55.0})
    folded, dropped = history.compact(T0)
    assert folded == 7  # six from the old hour and the month-old one
    assert dropped == 1  # the month-old hourly mean is past retention
    series = history.series("dev-a", T0 - timedelta(days=5))
    assert [round(figures["cpu_temp_c"], 1) for _, figures in series] == [65.0, 55.0]


def test_ops_loop_runs_rounds_and_stops(central_db: Database) -> None:
    from central.ops.service import OpsLoop
    from tests.harness.services import wait_until

    with central_db.write() as conn:
        conn.execute(insert(devices).values(
            id="dev-x", facility="gym", status="online", session=1, last_seen=utc(T0),
            versions={}, health={"cpu_temp_c": 95.0}, health_at=utc(T0),
        ))  # fmt: skip
    loop = OpsLoop(central_db, AlertEngine(AlertThresholds(fire_after_s=0)), interval=0.05).start()
    try:
        wait_until(lambda: loop.rounds >= 3, 10, "three ops rounds")
    finally:
        loop.close()
    assert ("dev-x", "cpu_hot") in AlertStore(central_db).firing()
    # Restarted: the open alert is restored, not opened twice.
    again = OpsLoop(central_db, AlertEngine(AlertThresholds(fire_after_s=0)), interval=0.05).start()
    try:
        wait_until(lambda: again.rounds >= 2, 10, "two more rounds")
    finally:
        again.close()
    rules = [a["rule"] for a in AlertStore(central_db).listing(device="dev-x")]
    assert rules.count("cpu_hot") == 1


def test_health_history_fed_by_ingest(central_db: Database) -> None:
    from central.ingest.store import IngestStore
    from contracts.mqtt import Health

    store = IngestStore(central_db, "w1")
    store.record_health("dev-h", Health(at=datetime.now(UTC), cpu_temp_c=61.0, outbox_depth=4))
    series = HealthHistory(central_db).series("dev-h", datetime.now(UTC) - timedelta(minutes=5))
    assert [f for _, f in series] == [{"cpu_temp_c": 61.0, "outbox_depth": 4.0}]


def test_central_cli_staff_create_and_notify_config(tmp_path: Path) -> None:
    import subprocess
    import sys

    from central.cli import ops_loop
    from central.config import load_config

    config = tmp_path / "central.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "c.db"}"\n'
        "[ops]\nevaluate_every_seconds = 5\n[ops.thresholds]\ncpu_temp_c = 70\n"
        '[notify.webhook]\nurl = "http://127.0.0.1:9/hook"\n'
        '[notify.email]\nhost = "127.0.0.1"\nsender = "a@b.c"\nrecipients = ["ops@b.c"]\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "central", "staff", "create", "sato", "--role", "viewer",
         "--password-stdin", "--config", str(config)],
        input=PASSWORD + "\n", capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "otpauth://totp/" in result.stdout
    loaded = load_config(config)
    loop = ops_loop(loaded, Database(loaded.database.url))
    assert loop.interval == 5 and loop.engine.thresholds.cpu_temp_c == 70
    assert len(loop.notifiers) == 2
    short = subprocess.run(
        [sys.executable, "-m", "central", "staff", "create", "ito", "--role", "viewer",
         "--password-stdin", "--config", str(config)],
        input="short\n", capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert short.returncode == 1 and "at least 12 characters" in short.stderr
