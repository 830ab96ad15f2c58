"""A screen change on the real Kivy touchscreen (under Xvfb) makes the
player start that screen's prompt in the person's language; "read again"
repeats it; the enrolment mode's screens speak too. The synthesiser and the
player are simulated (tests/integration/voice_ui_driver.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from foundation.languages import language as registered
from kiosk.checkin import messages as cm
from kiosk.enrolment import texts as et
from kiosk.i18n import available_languages, translate
from kiosk.voice import texts as vx
from tests.harness.keys import write_test_key

# The language screen reads each offered language's name in its own voice.
LANGUAGE_NAMES = [registered(code).name for code in available_languages()]

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def config(tmp_path: Path) -> Path:
    path = tmp_path / "device.toml"
    path.write_text(
        '[device]\nid = "voice-door"\nfacility = "gym"\nname = "Gym"\n'
        f'[store]\npath = "{tmp_path / "device.db"}"\n'
        f'[reader]\ncredential_key_file = "{write_test_key(tmp_path / "credential.key")}"\n'
        f'[lock]\nsocket = "{tmp_path / "none.sock"}"\npin_factory = "mock"\n'
        '[[doors]]\nid = "room-a"\nname = "Room A"\nrelay_pin = 17\n'
        '[central]\nurl = "https://127.0.0.1:9"\n[enrolment]\nenabled = true\n'
        '[voice]\noutput = "sim"\n'
    )
    return path


def said(language: str, *messages: str) -> list[str]:
    return [translate(language, m) for m in messages]


def test_voice_screen_changes_start_the_screen_prompt(
    tmp_path: Path, kivy_env: dict[str, str]
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.integration.voice_ui_driver", str(config(tmp_path)),
         str(tmp_path / "voice-cache")],
        cwd=ROOT, env=kivy_env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    lines: list[dict[str, Any]] = [
        json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")
    ]
    assert done.returncode == 0 and lines and lines[-1].get("done"), done.stderr[-3000:]
    assert not [x for x in lines if "error" in x], (lines, done.stderr[-3000:])
    attract_ja = said("ja", cm.TAP_YOUR_CARD, cm.OR_ENTER_CODE, vx.CHECKIN_HOW, vx.CHANGE_LANGUAGE)
    keypad_ja = said("ja", cm.ENTER_CODE, vx.CODE_HOW)
    assert [(x["screen"], x["texts"]) for x in lines[:-1]] == [
        ("attract", attract_ja),
        ("keypad", keypad_ja),
        ("keypad", keypad_ja),  # read again
        ("attract", attract_ja),
        ("language", [*said("ja", vx.CHOOSE_LANGUAGE), *LANGUAGE_NAMES]),
        ("attract", said("en", cm.TAP_YOUR_CARD, cm.OR_ENTER_CODE, vx.CHECKIN_HOW,
                         vx.CHANGE_LANGUAGE)),
        ("enrol_code", said("en", et.ENTER_CODE, et.CODE_HINT, vx.ENROL_CODE_HOW)),
    ]  # fmt: skip
