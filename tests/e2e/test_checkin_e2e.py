"""Check-in end to end: a virtual member card tapped through real pcscd +
vpcd, the touchscreen under Xvfb, the real lock controller daemon on mock
pins, and the device store with a reservation: relay energised, result on
screen, events in the outbox. Also every deny path the card reader makes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cardreader.credential import member_reference
from cardreader.sim.profiles import DEMO_FELICA_IDM
from lockctl.client import LockClient
from sync.store import open_store
from tests.e2e.test_touchscreen import assert_not_blank, run_driver
from tests.harness import clockrun
from tests.harness.door import door_device
from tests.harness.keys import TEST_KEY
from tests.harness.pcscd import Pcscd
from tests.harness.services import ServiceProcess, wait_until

ROOT = Path(__file__).resolve().parents[2]
TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.fixture
def device(tmp_path: Path) -> Iterator[Path]:
    """A device config, its store with a reservation for the demo FeliCa card,
    and lockctl serving it on mock pins."""
    with door_device(tmp_path) as config:
        yield config


def test_checkin_card_tap_unlocks_door(
    device: Path, pcscd: Pcscd, kivy_env: dict[str, str], artifacts_dir: Path, tmp_path: Path
) -> None:
    steps = [
        {"insert": "felica"}, {"wait": "result", "timeout": 10}, {"state": True},
        {"shot": "ja-result-granted"}, {"remove": True},
        {"tap": "result.done_button"}, {"wait": "attract"},
        {"insert": "unknown"}, {"wait": "result", "timeout": 10}, {"state": True}, {"remove": True},
        {"tap": "result.done_button"}, {"wait": "attract"},
        {"insert": "mifare"}, {"wait": "result", "timeout": 10}, {"state": True}, {"remove": True},
    ]  # fmt: skip
    scenario = {"config": str(device), "artifacts": str(artifacts_dir / "touchscreen"),
                "cards": {"port": pcscd.ports[0]}, "steps": steps}  # fmt: skip
    env = {**kivy_env, **pcscd.env}
    lines = run_driver(scenario, tmp_path, env)
    states = [line for line in lines if "dots" in line]
    granted, unknown, unregistered = states
    assert granted["screen"] == "result" and "Room A" in granted["body"], granted
    assert "使えません" in unknown["title"]
    assert unregistered["body"] == "このカードの予約はありません。"
    assert_not_blank(next(line["shot"] for line in lines if "shot" in line))

    with LockClient(tmp_path / "lockctl.sock") as lock:
        status = lock.status()
    history = status["doors"][0]["mock_relay_history"]
    assert any(level for _, level in history), history  # the relay was energised

    with open_store(tmp_path / "device.db") as store:
        events = [
            (r["type"], json.loads(r["data"])) for r in store.query("SELECT type, data FROM outbox")
        ]
    types = [t for t, _ in events]
    assert ("checkin.granted", "reservation") in [(t, d.get("reason")) for t, d in events]
    assert "door.unlocked" in types
    denied = [d["reason"] for t, d in events if t == "checkin.denied"]
    assert denied == ["unknown_card", "not_registered"]
    assert DEMO_FELICA_IDM.hex() not in json.dumps(events).lower()


def test_checkin_demo_developer_panel_puts_cards_on_the_reader(
    device: Path, pcscd: Pcscd, kivy_env: dict[str, str], artifacts_dir: Path, tmp_path: Path
) -> None:
    from cardreader.certs import describe
    from cardreader.credential import certificate_reference
    from cardreader.sim.testpki import load_test_pki, write_test_pki

    pki_dir = tmp_path / "pki"
    write_test_pki(pki_dir)
    ref = certificate_reference(
        TEST_KEY, describe(load_test_pki(pki_dir).users["valid"].der).fingerprint
    )
    with open_store(tmp_path / "device.db") as store, store.write() as conn:
        conn.execute(
            "INSERT INTO reservation_credentials (reservation_id, credential_ref) VALUES (?, ?)",
            ("res-felica", ref),
        )
    steps = [
        {"key": "F6"}, {"wait": "result", "timeout": 15}, {"state": True}, {"panel": True},
        {"shot": "ja-devpanel-mynumber-granted"}, {"key": "F8"}, {"panel": True},
    ]  # fmt: skip
    scenario = {
        "config": str(device),
        "artifacts": str(artifacts_dir / "touchscreen"),
        "cards": {"port": pcscd.ports[0]},
        "dev_panel": str(pki_dir),
        "steps": steps,
    }
    lines = run_driver(scenario, tmp_path, {**kivy_env, **pcscd.env})
    state = next(line for line in lines if "dots" in line)
    assert "Room A" in state["body"], state
    panels = [line["panel"] for line in lines if "panel" in line]
    assert "UNLOCKED" in panels[0] and "card on reader" in panels[0]
    assert "no card" in panels[1]


DENY_CASES = {
    # uid: (reservation door, starts in minutes, length in minutes, cancelled, expected body)
    "0102030405060701": ("room-a", 120, 60, False, "予約の時間になっていません。"),
    "0102030405060702": ("room-a", -180, 60, False, "予約の時間は終わりました。"),
    "0102030405060703": ("room-b", -5, 60, False, "予約はRoom AではなくRoom Bです。"),
    "0102030405060704": ("room-a", -5, 60, True, "この予約は取り消されています。"),
}


def test_checkin_every_deny_reason_by_card_and_code_lockout_and_idle(
    device: Path, pcscd: Pcscd, kivy_env: dict[str, str], artifacts_dir: Path, tmp_path: Path
) -> None:
    text = device.read_text() + '[[doors]]\nid = "room-b"\nname = "Room B"\nrelay_pin = 18\n'
    device.write_text(text)
    now = int(datetime.now(TOKYO).timestamp())
    with open_store(tmp_path / "device.db") as store, store.write() as conn:
        for uid, (door, start, length, cancelled, _) in DENY_CASES.items():
            rid = f"res-{uid[-2:]}"
            conn.execute(
                "INSERT INTO reservations (id, facility, door, starts_at, ends_at, status, version)"
                " VALUES (?, 'gym', ?, ?, ?, ?, 1)",
                (rid, door, now + start * 60, now + (start + length) * 60,
                 "cancelled" if cancelled else "active"),
            )  # fmt: skip
            ref = member_reference(TEST_KEY, bytes.fromhex(uid))
            conn.execute("INSERT INTO reservation_credentials VALUES (?, ?)", (rid, ref))
    steps: list[dict[str, object]] = []
    for uid in DENY_CASES:
        steps += [
            {"insert": "felica", "uid": uid}, {"wait": "result", "timeout": 10}, {"state": True},
            {"remove": True}, {"tap": "result.done_button"}, {"wait": "attract"},
        ]  # fmt: skip
    steps += [{"tap": "attract.code_button"}, {"wait": "keypad"}]
    for _ in range(5):  # five wrong codes: the keypad locks
        steps += [{"tap": f"keypad.key_{d}"} for d in "999999"]
        steps += [
            {"tap": "keypad.key_ok"}, {"wait": "result"}, {"state": True},
            {"tap": "result.done_button"}, {"wait": "attract"},
            {"tap": "attract.code_button"}, {"wait": "keypad"},
        ]  # fmt: skip
    steps += [{"shot": "ja-keypad-before-idle"}, {"idle": 60}, {"wait": "attract"}, {"state": True}]
    scenario = {
        "config": str(device),
        "artifacts": str(artifacts_dir / "touchscreen"),
        "cards": {"port": pcscd.ports[0]},
        "steps": steps,
    }
    lines = run_driver(scenario, tmp_path, {**kivy_env, **pcscd.env})
    states = [line for line in lines if "dots" in line]
    bodies = [s["body"] for s in states[:4]]
    assert bodies[0] == DENY_CASES["0102030405060701"][4]
    assert bodies[1:] == [case[4] for case in list(DENY_CASES.values())[1:]]
    codes = [s["body"] for s in states[4:9]]
    assert codes[:4] == ["この番号の予約はありません。"] * 4
    assert codes[4] == "番号の間違いが多すぎます。"
    assert states[-1]["screen"] == "attract" and states[-1]["dots"] == "○○○○○○"
    with open_store(tmp_path / "device.db") as store:
        rows = store.query("SELECT data FROM outbox WHERE type = 'checkin.denied'")
    reasons = [json.loads(r["data"])["reason"] for r in rows]
    assert reasons[:4] == ["too_early", "ended", "other_door", "cancelled"]
    assert reasons[-1] == "code_locked"


def test_checkin_headless_door_terminal(device: Path, pcscd: Pcscd, tmp_path: Path) -> None:
    import os
    import signal

    from cardreader.sim.cards import UidCard
    from tests.harness.cards import inserted

    terminal = ServiceProcess(
        "door-terminal",
        clockrun.argv(True, "kiosk", "--config", str(device), "--headless"),
        tmp_path / "terminal.log",
        env=pcscd.env,
    )
    terminal.start()
    try:
        ready = lambda: terminal.check_alive() and "door terminal ready" in terminal.log_tail(50)  # noqa: E731
        wait_until(ready, 20, "the door terminal")

        def granted() -> bool:
            with open_store(tmp_path / "device.db") as store:
                return bool(store.query("SELECT 1 FROM outbox WHERE type = 'checkin.granted'"))

        with inserted(UidCard(uid=DEMO_FELICA_IDM), pcscd):
            wait_until(granted, 10, "a granted check-in")
        with LockClient(tmp_path / "lockctl.sock") as lock:
            history = lock.status()["doors"][0]["mock_relay_history"]
        assert any(level for _, level in history)
        os.kill(terminal.pid, signal.SIGTERM)
        assert terminal.proc is not None and terminal.proc.wait(10) == 0
    finally:
        terminal.stop()
    assert "Traceback" not in terminal.log_tail(200)
