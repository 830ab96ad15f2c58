"""The USB keypad end to end, keypad only: real X key events (xdotool into
Xvfb) through SDL and Kivy into both touchscreens, with real pcscd + vpcd
virtual cards. A whole issuance (wrong PIN once, then right; payment
simulator; file printer) and a whole check-in (a reservation code, the
real lock controller on mock pins unlocking; a member card; call staff),
a card enrolment opened on top of check-in, what the keypad said (focus
announcements, never a PIN digit), and the keypad unplugged mid-flow: the
screen goes on by touch, one log line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from lockctl.client import LockClient
from sync.store import open_store
from tests.e2e.test_touchscreen import run_driver, seed_code_reservation
from tests.harness import door
from tests.harness.keys import write_test_key
from tests.harness.pcscd import Pcscd
from tests.harness.services import ServiceProcess, require_binary

TOKYO = ZoneInfo("Asia/Tokyo")
CODE = "482913"
POSITION = re.compile(r"(, \d+ of \d+|、\d+個中\d+番目)$")
TYPED = {
    "No digits entered.", "One digit entered.", "Two digits entered.",
    "Three digits entered.", "Four digits entered.", "Five digits entered.",
    "Six digits entered.",
}  # fmt: skip


def reachable(display: str) -> bool:
    probe = subprocess.run(["xdotool", "getmouselocation"], env={**os.environ, "DISPLAY": display},
                           capture_output=True, timeout=5, check=False)  # fmt: skip
    return probe.returncode == 0


@pytest.fixture
def x_env(tmp_path: Path, kivy_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The Kivy environment on an Xvfb of this test's own, on a display number
    no lock or socket names, checked to answer: the keys go through X, so a
    display taken over by another run's server must not pass silently (Kivy
    would fall back to drawing off screen and never see a key)."""
    binary = require_binary("Xvfb")
    for number in range(240, 300):
        if any(Path(p).exists() for p in (f"/tmp/.X{number}-lock", f"/tmp/.X11-unix/X{number}")):
            continue
        server = ServiceProcess(
            "Xvfb", [binary, f":{number}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
            tmp_path / f"xvfb-{number}.log",
        )  # fmt: skip
        server.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and server.check_alive():
            if reachable(f":{number}"):
                yield {**kivy_env, "DISPLAY": f":{number}"}
                server.stop()
                return
            time.sleep(0.1)
        server.stop()
    pytest.fail("no Xvfb display of its own could be started", pytrace=False)


def press(*keys: str) -> list[dict[str, Any]]:
    return [{"press": k} for k in keys]


def digits(code: str) -> list[dict[str, Any]]:
    return press(*(f"KP_{d}" for d in code))


def events(store_path: Path) -> list[tuple[str, dict[str, Any]]]:
    with open_store(store_path) as store:
        rows = store.query("SELECT type, data FROM outbox ORDER BY rowid")
        return [(r["type"], json.loads(r["data"])) for r in rows]


def pressed(lines: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(x["pressed"], x["screen"], x["focus"]) for x in lines if "pressed" in x]


@pytest.fixture
def door_device(tmp_path: Path) -> Iterator[Path]:
    """A door device with a keypad, its store with a reservation for the demo
    FeliCa card and one for code CODE, and lockctl on mock pins."""
    keypad = tmp_path / "usb-keypad-event-kbd"  # stands for the device node
    keypad.write_text("")
    extra = f'[keypad]\ndevice = "{keypad}"\ncheck_seconds = 0.2\n'
    with door.door_device(tmp_path, extra) as config:
        seed_code_reservation(config, CODE)
        yield config


def test_keypad_only_checkin_code_card_and_staff(
    door_device: Path, pcscd: Pcscd, x_env: dict[str, str], artifacts_dir: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    steps: list[dict[str, Any]] = [
        # The first key says where the focus is; the next chooses it.
        *press("KP_Enter"), {"shot": "keypad-attract-focus"}, *press("KP_5"), {"wait": "keypad"},
        *digits(CODE[:2]), *press("KP_Decimal"), *digits(CODE[1:]), {"state": True},
        *press("KP_Enter"), {"wait": "result"}, {"state": True},
        *press("KP_5"), {"wait": "attract"},
        # A member card, then back with "-".
        {"insert": "felica"}, {"wait": "result", "timeout": 10}, {"state": True},
        {"remove": True}, *press("KP_Subtract"), {"wait": "attract"},
        # Call staff with "*", hear the prompt again with "+", back with "-".
        *press("KP_Multiply"), {"wait": "staff"}, *press("KP_Add", "KP_Subtract"),
        {"wait": "attract"},
        # The keysyms a keypad sends with NumLock off move the same way.
        *press("KP_Right", "KP_Left"),
        {"spoken": True},
        # The keypad is unplugged: one log line, and the screen works by touch.
        {"unplug": True}, {"wait": "attract"},
        {"tap": "attract.code_button"}, {"wait": "keypad"},
        {"tap": "keypad.back_button"}, {"wait": "attract"}, {"spoken": True},
    ]  # fmt: skip
    scenario = {"config": str(door_device), "artifacts": str(artifacts_dir / "keypad"),
                "cards": {"port": pcscd.ports[0]}, "keypad": True, "steps": steps,
                "keypad_device": str(tmp_path / "usb-keypad-event-kbd")}  # fmt: skip
    started = time.monotonic()
    lines = run_driver(scenario, tmp_path, {**x_env, **pcscd.env})
    elapsed = time.monotonic() - started
    keys = pressed(lines)
    assert keys[0] == ("KP_Enter", "attract", "code_button")
    # The ring: on the focused button once the keypad is used, none where
    # digits are typed, hidden again for the next person (back on attract).
    rings = [(x["screen"], x["rings"]) for x in lines if "pressed" in x]
    assert rings[0] == ("attract", 1) and ("staff", 1) in rings and ("result", 1) in rings
    assert {shown for screen, shown in rings if screen == "keypad"} == {0}
    assert ("attract", 0) in rings and max(shown for _, shown in rings) == 1
    states = [line for line in lines if "dots" in line]
    # Two digits, one deleted ("."), then the rest: the code as typed on screen.
    assert states[0]["dots"] == "●●●●●●"
    assert states[1]["screen"] == "result" and "Room A" in states[1]["body"], states[1]
    assert states[2]["screen"] == "result" and "Room A" in states[2]["body"], states[2]
    # A new person: the first key starts on the main action, the next moves.
    assert ("KP_Right", "attract", "code_button") in keys
    assert ("KP_Left", "attract", "staff_button") in keys

    first, last = [line for line in lines if "spoken" in line]
    said = [text for _screen, text in first["spoken"]]
    # Japanese: the attract screen's language; the access bar's buttons first.
    assert said[0] == "予約番号を入力、6個中6番目", said[:3]
    assert "<repeat>" in said
    on_keypad = [text for screen, text in first["spoken"] if screen == "keypad"]
    assert on_keypad and all(not re.search(r"[0-9]", t) for t in on_keypad), on_keypad
    assert on_keypad[:3] == ["一けた入力しました。", "二けた入力しました。", "一けた入力しました。"]
    assert CODE not in json.dumps(first["spoken"], ensure_ascii=False)
    assert last["spoken"] == first["spoken"]  # taps say nothing
    assert last["keypad_log"] == [{"level": "WARNING", "event": "keypad.missing"}]

    with LockClient(door_device.parent / "lockctl.sock") as lock:
        history = lock.status()["doors"][0]["mock_relay_history"]
    # Energised by the code; the card's unlock came while it still was (extended).
    assert any(level for _, level in history), history
    recorded = events(door_device.parent / "device.db")
    granted = [d.get("reason") for t, d in recorded if t == "checkin.granted"]
    assert len(granted) == 2, recorded
    assert "kiosk.staff_called" in [t for t, _ in recorded]
    assert CODE not in json.dumps(recorded)
    assert elapsed < 60, elapsed


@pytest.fixture
def counter(tmp_path: Path) -> Path:
    return door.counter_config(tmp_path, '[keypad]\ncall_staff_key = "*"\n')


def test_keypad_only_issuance_wrong_then_right_pin(
    counter: Path, pcscd: Pcscd, x_env: dict[str, str], artifacts_dir: Path, tmp_path: Path
) -> None:
    steps: list[dict[str, Any]] = [
        # "*" calls staff (no staff call configured: where to go); back
        # returns to the start. The access bar's buttons come first.
        *press("KP_Multiply"), {"wait": "staff"},
        {"press": "KP_2", "until": "back_button", "max": 8}, *press("KP_5"), {"wait": "attract"},
        {"press": "KP_2", "until": "language_button", "max": 8}, *press("KP_5"),
        {"wait": "language"},
        {"press": "KP_2", "until": "lang_en", "max": 12}, *press("KP_5"), {"wait": "place_card"},
        {"insert": "mynumber"}, {"wait": "pin", "timeout": 20},
        *digits("9999"), *press("KP_Enter"), {"wait": "pin", "timeout": 20}, {"state": True},
        *digits("1234"), {"shot": "keypad-pin-typed"}, *press("KP_Enter"),
        {"wait": "kinds", "timeout": 20},
        *press("KP_5"), {"wait": "options"},
        *press("KP_6", "KP_5"), {"shot": "keypad-options-focus"},
        {"press": "KP_2", "until": "next_button", "max": 10}, *press("KP_5"), {"wait": "copies"},
        # Next is last, after Back and Cancel: "One more" is before them.
        {"press": "KP_8", "until": "plus_button", "max": 4}, *press("KP_5"),
        {"press": "KP_2", "until": "next_button", "max": 4}, *press("KP_5"), {"wait": "confirm"},
        *press("KP_Enter"), {"wait": "take_card", "timeout": 20},
        {"remove": True}, {"wait": "thanks", "timeout": 10},
        *press("KP_5"), {"wait": "attract"}, {"spoken": True},
    ]  # fmt: skip
    scenario = {"config": str(counter), "artifacts": str(artifacts_dir / "keypad"),
                "spool": str(tmp_path / "spool"), "cards": {"port": pcscd.ports[0]},
                "keypad": True, "steps": steps}  # fmt: skip
    started = time.monotonic()
    lines = run_driver(scenario, tmp_path, {**x_env, **pcscd.env}, "tests.e2e.issuance_driver")
    elapsed = time.monotonic() - started
    keys = pressed(lines)
    assert keys[0][:2] == ("KP_Multiply", "staff")
    assert ("KP_2", "staff", "back_button") in keys
    assert ("KP_2", "attract", "language_button") in keys
    assert ("KP_2", "language", "lang_en") in keys
    wrong = next(line for line in lines if "tries" in line)
    assert wrong["screen"] == "pin" and wrong["tries"] == "Tries left: 2"
    assert ("KP_8", "copies", "plus_button") in keys
    assert ("KP_6", "options", "option_household_all") in keys
    summary = next(line["summary"] for line in lines if "summary" in line)
    assert summary["balance"] == 400 and summary["outcomes"] == ["printed"]
    assert len(list((tmp_path / "spool").glob("*.pdf"))) == 2
    recorded = events(tmp_path / "device.db")
    assert ("issuance.issued", {"type": "juminhyo", "copies": 2, "fee_yen": 400}) in recorded
    assert ("issuance.pin_wrong", {"tries_left": 2}) in recorded

    spoken = next(line["spoken"] for line in lines if "spoken" in line)
    on_pin = [text for screen, text in spoken if screen == "pin"]
    assert on_pin == [
        "One digit entered.", "Two digits entered.", "Three digits entered.",
        "Four digits entered.",
    ] * 2, on_pin  # fmt: skip
    everything = json.dumps(spoken)
    assert "9999" not in everything and "1234" not in everything
    assert not [text for screen, text in spoken if screen == "place_card"]  # no focus there
    assert ["copies", "2"] in spoken  # "One more" pressed: the number of copies said
    elsewhere = [text for screen, text in spoken if screen != "pin" and text != "2"]
    assert all(POSITION.search(text) for text in elsewhere), elsewhere
    assert any(text.endswith(", selected, 8 of 15") for text in elsewhere), elsewhere
    assert any(text.startswith("Pay") for text in elsewhere), elsewhere
    assert elapsed < 60, elapsed


def test_keypad_only_card_enrolment_mode(
    tmp_path: Path, pcscd: Pcscd, x_env: dict[str, str], artifacts_dir: Path
) -> None:
    """Card enrolment, opened on top of check-in, by keys: the mode gets the
    typed code and the back key as it gets taps."""
    code = "48291736"
    config = tmp_path / "device.toml"
    config.write_text(
        '[device]\nid = "e2e-door"\nfacility = "gym"\nname = "Gym"\n'
        f'[store]\npath = "{tmp_path / "device.db"}"\n'
        f'[reader]\ncredential_key_file = "{write_test_key(tmp_path / "credential.key")}"\n'
        f'[lock]\nsocket = "{tmp_path / "no-lockctl.sock"}"\npin_factory = "mock"\n'
        '[[doors]]\nid = "room-a"\nname = "Room A"\nrelay_pin = 17\n'
        '[central]\nurl = "https://central.invalid"\n[enrolment]\nenabled = true\n'
    )
    steps: list[dict[str, Any]] = [
        *press("KP_Enter", "KP_2", "KP_5"), {"wait": "enrol_code"},
        *digits(code), *press("KP_Enter"), {"wait": "enrol_card"},
        {"insert": "felica"}, {"wait": "enrol_result", "timeout": 10}, {"remove": True},
        *press("KP_5"), {"wait": "attract"}, {"central": True}, {"spoken": True},
    ]  # fmt: skip
    scenario = {"config": str(config), "artifacts": str(artifacts_dir / "keypad"),
                "cards": {"port": pcscd.ports[0]}, "keypad": True,
                "enrolment": {"codes": {code: "ja"}}, "steps": steps}  # fmt: skip
    lines = run_driver(scenario, tmp_path, {**x_env, **pcscd.env})
    keys = pressed(lines)
    assert keys[:2] == [("KP_Enter", "attract", "code_button"), ("KP_2", "attract", "mode_button")]
    received = next(line["received"] for line in lines if "received" in line)
    assert len(received) == 1 and received[0][1] == "member_card"
    spoken = next(line["spoken"] for line in lines if "spoken" in line)
    on_code = [text for screen, text in spoken if screen == "enrol_code"]
    assert on_code[0] == "一けた入力しました。" and on_code[-1] == "八けた入力しました。", on_code
    assert code not in json.dumps(spoken, ensure_ascii=False)
    assert not any(re.search(r"[0-9]", text) for text in on_code)
