"""Remote commands at the check-in touchscreen, end to end under Xvfb: a
signed ``screen.capture`` put in the device store's ledger (as the sync
agent does) is taken on the attract screen as a real PNG of the window, and
refused ``screen_busy`` while a person's screen shows; a door in lockdown
(a signed ``door.lockdown`` run by the real lockctl daemon) is announced on
the attract screen, and a card tapped there is told the entrance is closed,
the relay never energised."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from PIL import Image

from cardreader.credential import member_reference
from cardreader.sim.profiles import DEMO_FELICA_IDM
from lockctl.client import LockClient
from sync.config import load_config
from tests.e2e.test_touchscreen import run_driver
from tests.harness.door import door_device
from tests.harness.door_commands import CommandSigner, entry, receive
from tests.harness.keys import TEST_KEY
from tests.harness.services import wait_until

SIZE = [1024, 600]


def commands_section(tmp_path: Path, signer: CommandSigner) -> str:
    key = signer.write_public_key(tmp_path / "command-key.pem")
    return f'[commands]\npublic_key_file = "{key}"\nsystem = "sim"\n'


def write_command(tmp_path: Path, name: str, payload: bytes) -> tuple[str, str]:
    path = tmp_path / f"{name}.json"
    path.write_bytes(payload)
    return str(path), json.loads(payload)["id"]


def test_kiosk_commands_screen_capture_on_attract_refused_on_keypad(
    tmp_path: Path, kivy_env: dict[str, str], artifacts_dir: Path
) -> None:
    signer = CommandSigner("e2e-door")
    with door_device(tmp_path, commands_section(tmp_path, signer)) as config:
        idle_file, idle_id = write_command(tmp_path, "idle", signer.sign("screen.capture", {}))
        busy_file, busy_id = write_command(tmp_path, "busy", signer.sign("screen.capture", {}))
        artifacts = artifacts_dir / "kiosk-commands"
        steps: list[dict[str, Any]] = [
            {"wait": "attract"}, {"receive": idle_file}, {"finished": idle_id},
            {"tap": "attract.code_button"}, {"wait": "keypad"}, {"tap": "keypad.key_1"},
            {"receive": busy_file}, {"finished": busy_id}, {"state": True},
        ]  # fmt: skip
        scenario = {"config": str(config), "artifacts": str(artifacts), "size": SIZE,
                    "commands": True, "steps": steps}  # fmt: skip
        lines = run_driver(scenario, tmp_path, kivy_env)
    results = {line["command"]: line for line in lines if "command" in line}
    idle, busy = results[idle_id], results[busy_id]
    assert (idle["state"], idle["code"]) == ("done", "ok"), idle
    png = (artifacts / f"{idle_id}.png").read_bytes()
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert list(image.size) == SIZE
    assert idle["detail"] == {"screen": "attract", "width": SIZE[0], "height": SIZE[1],
                              "bytes": len(png)}  # fmt: skip
    gray = image.convert("L").tobytes()
    assert max(gray) - min(gray) > 100, "the screenshot is blank"
    assert (busy["state"], busy["code"]) == ("refused", "screen_busy"), busy
    assert "keypad" in busy["message"]
    assert not (artifacts / f"{busy_id}.png").exists()
    assert lines[-2]["screen"] == "keypad" and lines[-2]["dots"].startswith("●")


def test_kiosk_commands_lockdown_shown_on_attract_and_card_told_entrance_closed(
    tmp_path: Path, kivy_env: dict[str, str], artifacts_dir: Path
) -> None:
    signer = CommandSigner("e2e-door")
    with door_device(tmp_path, commands_section(tmp_path, signer)) as config:
        db = load_config(config).store.path
        lockdown = receive(db, signer.sign("door.lockdown", {"door": "room-a",
                                                              "reason": "fire drill"}))  # fmt: skip
        wait_until(lambda: (e := entry(db, lockdown)) is not None and e.state == "done", 10,
                   "lockctl to run the lockdown")  # fmt: skip
        ref = member_reference(TEST_KEY, DEMO_FELICA_IDM)
        steps: list[dict[str, Any]] = [
            {"wait": "attract"}, {"state": True}, {"shot": "attract-lockdown"},
            {"card": ref}, {"wait": "result"}, {"state": True}, {"shot": "result-lockdown"},
        ]  # fmt: skip
        scenario = {"config": str(config), "artifacts": str(artifacts_dir / "kiosk-lockdown"),
                    "size": SIZE, "steps": steps}  # fmt: skip
        lines = run_driver(scenario, tmp_path, kivy_env)
        with LockClient(tmp_path / "lockctl.sock") as client:
            door = next(d for d in client.status()["doors"] if d["door"] == "room-a")
    attract, result = [line for line in lines if "dots" in line]
    assert attract["closed"] == "この入口は現在閉鎖中です。係員にお問い合わせください。"
    assert result["title"] == "この入口は閉鎖中です"
    assert "係員" in result["next"]
    assert not any(level for _at, level in door["mock_relay_history"])
