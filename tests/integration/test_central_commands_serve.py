"""``python -m central serve`` with ``[commands]``: the command relay runs
beside the API (a command asked through the API reaches a device over the
real broker and its answer is read back), and an unusable signing key stops
``serve`` with exit 3 before anything runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from central.cli import main
from central.cli_common import EXIT_CONFIG
from tests.harness.central import ROOT, central_process, write_config
from tests.harness.central_commands import device_client, write_signing_key
from tests.harness.keys import write_test_key
from tests.harness.mosquitto import Mosquitto
from tests.harness.services import free_port, wait_until


def _cli(config: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "central", *args, "--config", str(config)],
                          capture_output=True, text=True, check=True, cwd=ROOT)  # fmt: skip
    return done.stdout.strip()


def _up(base: str) -> bool:
    try:
        return httpx.get(base + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_commands_serve_runs_the_relay_beside_the_api(tmp_path: Path, mosquitto: Mosquitto) -> None:
    port = free_port()
    code_key = write_test_key(tmp_path / "credential.key")
    signing, key = write_signing_key(tmp_path / "keys")
    extra = (f'[api]\nport = {port}\n[reservations]\ncode_key_file = "{code_key}"\n'
             f'[commands]\nsigning_key_file = "{signing}"\n')  # fmt: skip
    config = write_config(tmp_path, mosquitto, f"sqlite:///{tmp_path / 'central.db'}", extra=extra)
    _cli(config, "device", "add", "--id", "serve-door-1", "--facility", "hall-s")
    headers = {"Authorization": f"Bearer {_cli(config, 'token', 'create', '--role', 'operator')}"}
    door = device_client(mosquitto, "serve-door-1", key)
    door.online()
    api = central_process("api", ["serve", "--config", str(config)], tmp_path / "api.log")
    api.start()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: api.check_alive() and _up(base), 30, "the API to answer")
        with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
            made = http.post("/api/devices/serve-door-1/commands",
                             json={"name": "door.relock", "args": {"door": "main"}})  # fmt: skip
            assert made.status_code == 201, made.text
            got = door.next_command(timeout=20)
            assert got.command.id == made.json()["id"]
            door.answer(got, "done", message="locked")

            def done() -> bool:
                return bool(http.get(f"/api/commands/{got.command.id}").json()["state"] == "done")

            wait_until(done, 20, "the result in the API")
    finally:
        door.close()
        api.stop()


def test_commands_serve_refuses_an_unusable_signing_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code_key = write_test_key(tmp_path / "credential.key")
    not_a_key = tmp_path / "signing.pem"
    not_a_key.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    config = tmp_path / "central.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "c.db"}"\n'
                      f'[reservations]\ncode_key_file = "{code_key}"\n[broker]\nport = 1\n'
                      f'[commands]\nsigning_key_file = "{not_a_key}"\n')  # fmt: skip
    assert main(["serve", "--config", str(config)]) == EXIT_CONFIG
    assert "commands.signing_key_file: unusable" in capsys.readouterr().err
