"""The touchscreen end to end under Xvfb: taps through hit-testing, every
screen in both languages captured and checked to be non-blank, targets at
least 15 mm, and the events the flow records."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from contracts.reservations_hash import code_hash as reservation_code_hash
from kiosk.reader import credential_key
from sync.config import load_config
from sync.reservations import ReservationCache
from sync.store import open_store
from tests.harness.keys import write_test_key
from tests.harness.smallfs import fill, mounted_tmpfs

ROOT = Path(__file__).resolve().parents[2]
TOKYO = ZoneInfo("Asia/Tokyo")


def device_config(tmp_path: Path, lock_socket: Path) -> Path:
    path = tmp_path / "device.toml"
    path.write_text(
        '[device]\nid = "e2e-door"\nfacility = "gym"\nname = "Gym"\n'
        f'[store]\npath = "{tmp_path / "device.db"}"\n'
        f'[reader]\ncredential_key_file = "{write_test_key(tmp_path / "credential.key")}"\n'
        f'[lock]\nsocket = "{lock_socket}"\npin_factory = "mock"\n'
        '[[doors]]\nid = "room-a"\nname = "Room A"\nrelay_pin = 17\n'
    )
    return path


def seed_code_reservation(config_path: Path, code: str) -> None:
    config = load_config(config_path)
    now = datetime.now(TOKYO)
    with open_store(config.store.path) as store, store.write() as conn:
        conn.execute(
            "INSERT INTO reservations (id, facility, door, starts_at, ends_at, code_hash, version)"
            " VALUES ('res-e2e', 'gym', 'room-a', ?, ?, ?, 1)",
            (
                int((now - timedelta(minutes=5)).timestamp()),
                int((now + timedelta(hours=1)).timestamp()),
                reservation_code_hash(credential_key(config), "gym", code),
            ),
        )
    with open_store(config.store.path) as store:
        ReservationCache(store, "gym").mark_synced()  # as the sync agent does


def run_driver(
    scenario: dict[str, Any],
    tmp_path: Path,
    env: dict[str, str],
    module: str = "tests.e2e.ui_driver",
) -> list[dict[str, Any]]:
    file = tmp_path / "scenario.json"
    file.write_text(json.dumps(scenario))
    result = subprocess.run(
        [sys.executable, "-m", module, str(file)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    (tmp_path / "driver.out").write_text(result.stdout)
    (tmp_path / "driver.err").write_text(result.stderr)
    lines = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    assert result.returncode == 0, (result.stdout[-1500:], result.stderr[-3000:])
    errors = [line for line in lines if "error" in line]
    assert not errors, (errors, result.stderr[-3000:])
    assert lines and lines[-1].get("done"), result.stderr[-3000:]
    return lines


def assert_not_blank(png: str) -> None:
    from PIL import Image

    image = Image.open(png).convert("L")
    gray = image.tobytes()
    assert max(gray) - min(gray) > 100, f"{png} looks blank"
    dark = sum(1 for value in gray if value < 128)
    assert dark > 500, f"{png} has almost no text"


def screens_scenario(language_steps: list[dict[str, Any]], tag: str) -> list[dict[str, Any]]:
    return [
        *language_steps,
        {"shot": f"{tag}-attract"},
        {"tap": "attract.top.access.language_button"}, {"wait": "language"},
        {"shot": f"{tag}-language"},
        {"tap": "language.back_button"}, {"wait": "attract"},
        {"tap": "attract.code_button"}, {"wait": "keypad"},
        {"tap": "keypad.key_1"}, {"tap": "keypad.key_2"}, {"state": True},
        {"shot": f"{tag}-keypad"},
        # The access bar's choices, by taps, on a screen of the flow.
        {"tap": "keypad.top.access.contrast_button"},
        {"tap": "keypad.top.access.more_time_button"}, {"state": True},
        {"shot": f"{tag}-keypad-high-contrast"},
        {"tap": "keypad.top.access.contrast_button"},
        # More time doubles the idle time: 65 s without a touch (not 35).
        {"idle": 35}, {"idle": 65}, {"shot": f"{tag}-keypad-countdown"},
        {"tap": "keypad.top.countdown.continue_button"},
        {"tap": "keypad.back_button"}, {"wait": "attract"},
        {"card": "cr1_unknowncard"}, {"wait": "result"}, {"state": True},
        {"shot": f"{tag}-result-not-registered"},
        {"tap": "result.top.access.staff_button"}, {"wait": "staff"}, {"shot": f"{tag}-staff"},
        {"tap": "staff.back_button"}, {"wait": "attract"},
        {"card": None, "readable": False}, {"wait": "result"}, {"shot": f"{tag}-result-unreadable"},
        {"tap": "result.done_button"}, {"wait": "attract"},
        {"tap": "attract.code_button"}, {"wait": "keypad"},
        *[{"tap": f"keypad.key_{d}"} for d in "482913"],
        {"tap": "keypad.key_ok"}, {"wait": "result"}, {"state": True},
        {"shot": f"{tag}-result-lock-unavailable"},
    ]  # fmt: skip


@pytest.mark.parametrize("language", ["ja", "en"])
def test_touchscreen_every_screen_by_taps(
    tmp_path: Path, kivy_env: dict[str, str], artifacts_dir: Path, language: str
) -> None:
    config = device_config(tmp_path, tmp_path / "no-lockctl.sock")
    seed_code_reservation(config, "482913")
    to_english = [
        {"tap": "attract.top.access.language_button"},
        {"wait": "language"},
        {"tap": "language.lang_en"},
        {"wait": "attract"},
    ]
    scenario = {
        "config": str(config),
        "artifacts": str(artifacts_dir / "touchscreen"),
        "steps": screens_scenario(to_english if language == "en" else [], language),
    }
    lines = run_driver(scenario, tmp_path, kivy_env)
    shots = [line["shot"] for line in lines if "shot" in line]
    assert len(shots) == 9
    for shot in shots:
        assert_not_blank(shot)
    taps = [line for line in lines if "tapped" in line]
    for tap in taps:
        assert round(tap["height_mm"], 2) >= 15 and round(tap["width_mm"], 2) >= 15, tap
    states = [line for line in lines if "screen" in line and "dots" in line]
    assert states[0]["dots"] == "●●○○○○"
    chosen = states.pop(1)  # high contrast and more time on, for this person
    assert chosen["choices"] == [False, True, True] and chosen["page"][:3] == [0, 0, 0]
    assert chosen["dots"] == "●●○○○○"
    assert states[1]["choices"] == [False, False, True]  # still this person's
    idle, doubled = [line for line in lines if "countdown" in line]
    assert not idle["countdown"] and doubled["countdown"]
    not_registered, lock_down = states[1], states[2]
    expected = {
        "ja": ("このカードの予約はありません。", "ドアの装置が応答していません。"),
        "en": (
            "This card is not registered for a reservation.",
            "The door controller is not responding.",
        ),
    }[language]
    assert (not_registered["body"], lock_down["body"]) == expected

    with open_store(tmp_path / "device.db") as store:
        events = [
            (r["type"], json.loads(r["data"])) for r in store.query("SELECT type, data FROM outbox")
        ]
    reasons = [(t, d.get("reason")) for t, d in events]
    assert reasons == [
        ("checkin.denied", "not_registered"),
        ("kiosk.staff_called", None),
        ("kiosk.staff_call_ended", "back"),  # the person left the staff screen
        ("checkin.denied", "unreadable_card"),
        ("checkin.failed", "lock_unavailable"),
    ]
    assert "482913" not in json.dumps(events)


def test_touchscreen_untrusted_clock_pauses_checkin(
    tmp_path: Path, kivy_env: dict[str, str], artifacts_dir: Path
) -> None:
    config = device_config(tmp_path, tmp_path / "no-lockctl.sock")
    seed_code_reservation(config, "482913")
    steps = [
        {"tap": "attract.code_button"},
        {"wait": "keypad"},
        *[{"tap": f"keypad.key_{d}"} for d in "482913"],
        {"tap": "keypad.key_ok"},
        {"wait": "result"},
        {"state": True},
        {"shot": "ja-result-clock-untrusted"},
    ]
    scenario = {
        "config": str(config),
        "artifacts": str(artifacts_dir / "touchscreen"),
        "steps": steps,
        "clock_trusted": False,
    }
    lines = run_driver(scenario, tmp_path, kivy_env)
    state = next(line for line in lines if "dots" in line)
    assert state["body"] == "時計が合っていないため受付を止めています。"
    assert_not_blank(next(line["shot"] for line in lines if "shot" in line))


def test_touchscreen_store_full_says_so_on_the_attract_screen(
    tmp_path: Path, kivy_env: dict[str, str], artifacts_dir: Path
) -> None:
    with mounted_tmpfs(tmp_path / "fs") as small:
        config = device_config(small, tmp_path / "no-lockctl.sock")
        text = config.read_text().replace("[store]\n", "[store]\nreserve_mb = 0.25\n")
        config.write_text(text)
        open_store(load_config(config).store.path, reserve_bytes=256 * 1024).close()
        filler = fill(small)
        steps = [
            {"notice": "この端末の記録領域がいっぱいです。係員にお知らせください。", "timeout": 10},
            {"shot": "ja-attract-store-full"},
        ]
        scenario = {
            "config": str(config),
            "artifacts": str(artifacts_dir / "touchscreen"),
            "steps": steps,
        }
        lines = run_driver(scenario, tmp_path, kivy_env)
        filler.unlink()
    assert next(line for line in lines if "notice" in line)["height_mm"] > 3
    assert_not_blank(next(line["shot"] for line in lines if "shot" in line))
