"""Remote commands through the real sync agent and a real mosquitto (mutual
TLS, the fleet ACL): a test client publishes signed commands as central does
(QoS 1, response topic, correlation data); the agent verifies, records,
answers, runs its own (with the simulated system) and reports results only
once the broker took them; an mTLS HTTPS server stands in for central's
attachment endpoint."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts.commands import ATTACHMENT_PATH, CommandResult
from contracts.mqtt import device_topic
from sync.ledger import CommandLedger
from sync.store import open_store
from tests.harness.commands import AttachmentServer, CentralCommands, signed, write_public_key
from tests.harness.mosquitto import Mosquitto
from tests.harness.mqtt import connect
from tests.harness.services import wait_until
from tests.harness.syncdev import agent_process, write_device_config

KEY = Ed25519PrivateKey.generate()
UNLOCK = {"door": "room-a", "seconds": 5, "reason": "testing"}


@contextlib.contextmanager
def running_agent(broker: Mosquitto, folder: Path, central_url: str = "") -> Iterator[None]:
    """The real agent for dev-a (simulated system, the test's command key), online."""
    config = write_device_config(broker, folder, "dev-a", "fac-1")
    pub = write_public_key(KEY, folder / "command.pub")
    lines = ["[commands]", f'public_key_file = "{pub}"', 'system = "sim"']
    if central_url:
        lines += ["[central]", f'url = "{central_url}"']
    config.write_text(config.read_text() + "\n".join(lines) + "\n")
    agent = agent_process(config, folder / "agent.log")
    agent.start()
    try:
        wait_subscribed(broker)
        yield
    finally:
        agent.stop()


def wait_subscribed(broker: Mosquitto) -> None:
    """Until the agent's commands subscription is in place: it subscribes
    before its first health message, and the broker handles a client's
    packets in order, so a health message seen means a command will arrive."""
    watcher = connect(broker, broker.identity("central"))
    try:
        watcher.subscribe(device_topic("dev-a", "health"))
        watcher.next_message(timeout=30)
    finally:
        watcher.close()


def ledger_of(folder: Path, command_id: str) -> tuple[str, str, bool] | None:
    with open_store(folder / "device.db") as store:
        rows = store.query("SELECT state, code, reported FROM commands WHERE id = ?", (command_id,))
    return (rows[0]["state"], rows[0]["code"], bool(rows[0]["reported"])) if rows else None


def command_events(folder: Path) -> list[dict[str, object]]:
    with open_store(folder / "device.db") as store:
        rows = store.query("SELECT data FROM outbox WHERE type = 'device.command'")
    return [json.loads(r["data"]) for r in rows]


def log_count(folder: Path, text: str) -> int:
    log = folder / "agent.log"
    return log.read_text().count(text) if log.exists() else 0


@pytest.fixture
def central(mosquitto: Mosquitto) -> Iterator[CentralCommands]:
    side = CentralCommands.connect(mosquitto)
    yield side
    side.close()


def send_and_wait(
    central: CentralCommands, name: str, args: dict[str, object], state: str = "done"
) -> CommandResult:
    """Send a signed command as central does; its result in ``state``."""
    cid, payload = signed(KEY, name, args)
    central.send(payload, cid.encode())
    return central.result(cid, state).result


def test_sync_commands_delivered_run_reported_and_never_run_twice(
    mosquitto: Mosquitto, central: CentralCommands, tmp_path: Path
) -> None:
    with running_agent(mosquitto, tmp_path):
        cid, payload = signed(KEY, "service.restart", {"service": "kiosk"})
        central.send(payload, cid.encode())
        delivered = central.result(cid, "delivered")
        done = central.result(cid, "done")
        assert delivered.correlation == cid.encode() == done.correlation
        assert done.result.code == "restarted"
        assert done.result.detail["run"] == "systemctl restart city-kiosk-kiosk.service"
        wait_until(lambda: ledger_of(tmp_path, cid) == ("done", "restarted", True), 10, "reported")
        [event] = [e for e in command_events(tmp_path) if e["command"] == cid]
        assert event == {"command": cid, "action": "service.restart", "state": "done",
                         "code": "restarted", "issued_by": "staff:tester"}  # fmt: skip
        # The same command again (a replay, or central's redelivery): the stored
        # result with the new correlation data, and nothing runs again.
        central.seen.clear()
        central.send(payload, b"again")
        again = central.result(cid, "done")
        assert again.correlation == b"again" and again.result.code == "restarted"
        assert log_count(tmp_path, "simulated system action") == 1


def test_sync_commands_expired_forged_and_misdirected_are_refused(
    mosquitto: Mosquitto, central: CentralCommands, tmp_path: Path
) -> None:
    with running_agent(mosquitto, tmp_path):
        old = datetime.now(UTC) - timedelta(minutes=10)
        expired, payload = signed(KEY, "door.relock", {"door": "room-a"}, issued_at=old)
        central.send(payload, expired.encode())
        assert central.result(expired, "expired").result.code == "expired"
        other = Ed25519PrivateKey.generate()
        foreign, payload = signed(other, "door.unlock", UNLOCK)
        central.send(payload, foreign.encode())
        assert central.result(foreign, "refused").result.code == "unknown_key"
        tampered, payload = signed(KEY, "door.unlock", UNLOCK)
        central.send(payload.replace(b'"seconds":5.0', b'"seconds":600.0'), tampered.encode())
        assert central.result(tampered, "refused").result.code == "bad_signature"
        elsewhere, payload = signed(KEY, "door.relock", {"door": "room-a"}, device="dev-b")
        central.send(payload, elsewhere.encode())
        assert central.result(elsewhere, "refused").result.code == "wrong_device"
        states = {expired: "expired", foreign: "refused", tampered: "refused"}
        wait_until(
            lambda: all((ledger_of(tmp_path, c) or ("",))[0] == s for c, s in states.items()),
            10,
            "refusals in the ledger",
        )
        # A refused id stays refused: the right command under that id later is not run.
        _, good = signed(KEY, "service.restart", {"service": "kiosk"}, command_id=tampered)
        central.seen.clear()
        central.send(good, b"retry")
        assert central.result(tampered, "refused").correlation == b"retry"
        assert log_count(tmp_path, "simulated system action") == 0
        assert "testing" not in (tmp_path / "agent.log").read_text()  # no args content logged


def test_sync_commands_results_and_commands_survive_a_broker_outage(
    fresh_mosquitto: Mosquitto, tmp_path: Path
) -> None:
    central = CentralCommands.connect(fresh_mosquitto, persistent=True)
    with contextlib.ExitStack() as stack, running_agent(fresh_mosquitto, tmp_path):
        central.close()  # its session (and subscription) outlive the restart
        fresh_mosquitto.stop()
        # While offline: lockctl finishes a command it had taken (its result
        # must reach central later), and central's command is lost with the
        # broker (clean session).
        relock, body = signed(KEY, "door.relock", {"door": "room-a"})
        with open_store(tmp_path / "device.db") as store:
            ledger = CommandLedger(store)
            now = time.time()
            ledger.receive(relock, "door.relock", "lockctl", body, expires=now + 300, now=now)
            ledger.finish(relock, "done", "relocked", "", now, detail={"door": "room-a"})
        restart, payload = signed(KEY, "service.restart", {"service": "lockctl"})
        fresh_mosquitto.start()
        central = CentralCommands.connect(fresh_mosquitto, persistent=True)
        stack.callback(central.close)
        wait_subscribed(fresh_mosquitto)
        offline = central.result(relock, "done", timeout=30)
        assert offline.correlation == relock.encode()
        assert offline.result.detail == {"door": "room-a"}
        wait_until(lambda: ledger_of(tmp_path, relock) == ("done", "relocked", True), 10, "marked")
        # Central republishes the unexpired, undelivered command on "online":
        # it runs once; a second copy gets the stored result.
        central.send(payload, restart.encode())
        assert central.result(restart, "done").result.code == "restarted"
        central.seen.clear()
        central.send(payload, b"second copy")
        assert central.result(restart, "done").correlation == b"second copy"
        assert log_count(tmp_path, "simulated system action") == 1


def test_sync_commands_config_reload_refuses_an_invalid_file_and_restarts_nothing(
    mosquitto: Mosquitto, central: CentralCommands, tmp_path: Path
) -> None:
    with running_agent(mosquitto, tmp_path):
        config = tmp_path / "device.toml"
        good = config.read_text()
        config.write_text(good.replace("keepalive_seconds = 5", "keepalive_seconds = -5"))
        cid, payload = signed(KEY, "config.reload")
        central.send(payload, cid.encode())
        failed = central.result(cid, "failed").result
        assert failed.code == "config_invalid" and "keepalive_seconds" in failed.message
        assert log_count(tmp_path, "simulated system action") == 0
        config.write_text(good)
        cid, payload = signed(KEY, "config.reload")
        central.send(payload, cid.encode())
        done = central.result(cid, "done").result
        assert done.code == "reloaded" and len(done.detail["run"]) == 3


PERSONAL = re.compile(r"\d{12}|taro@example\.jp")


def test_sync_commands_diagnostics_and_screenshots_uploaded_over_mtls_without_personal_data(
    mosquitto: Mosquitto, central: CentralCommands, tmp_path: Path
) -> None:
    server = AttachmentServer(mosquitto, tmp_path / "listener")
    journal = tmp_path / "sim-journal.jsonl"
    lines = [
        {"MESSAGE": "card read for 123456789012 by taro@example.jp", "_SYSTEMD_UNIT": "x.service",
         "PRIORITY": "6", "__REALTIME_TIMESTAMP": "1765000000000000"},
        {"MESSAGE": "door room-a relocked", "_SYSTEMD_UNIT": "city-kiosk-lockctl.service"},
    ]  # fmt: skip
    journal.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with contextlib.closing(server), running_agent(mosquitto, tmp_path, central_url=server.url):
        cid, payload = signed(KEY, "diagnostics.collect", {"log_lines": 50})
        central.send(payload, cid.encode())
        done = central.result(cid, "done").result
        [upload] = server.uploads
        assert upload.path == ATTACHMENT_PATH.format(command_id=cid)
        assert (upload.content_type, upload.peer) == ("application/json", "dev-a")
        assert done.detail["bytes"] == len(upload.body)
        text = upload.body.decode()
        assert not PERSONAL.search(text)
        document = json.loads(text)
        assert [line["message"] for line in document["logs"]] == [
            "card read for ************ by <e-mail>", "door room-a relocked"]  # fmt: skip
        assert document["store"]["integrity"] == "ok" and "versions" in document
        # The touchscreen's screenshot waits in the ledger; the agent uploads it.
        shot, body = signed(KEY, "screen.capture")
        png = b"\x89PNG\r\n\x1a\n" + b"\0" * 100
        with open_store(tmp_path / "device.db") as store:
            ledger = CommandLedger(store)
            now = time.time()
            ledger.receive(shot, "screen.capture", "kiosk", body, expires=now + 300, now=now)
            ledger.finish(shot, "done", "captured", "", now, attachment=png)
        captured = central.result(shot, "done").result
        assert captured.detail["bytes"] == len(png) and len(captured.detail["sha256"]) == 64
        assert server.uploads[-1].content_type == "image/png"
        # Central refuses the next upload: a failed result with the code.
        server.answer = (409, b'{"error": "already_uploaded"}')
        cid, payload = signed(KEY, "diagnostics.collect")
        central.send(payload, cid.encode())
        failed = central.result(cid, "failed").result
        assert failed.code == "upload_failed" and "already_uploaded" in failed.message


def test_sync_commands_agent_restarts_itself_only_after_its_result_was_taken(
    mosquitto: Mosquitto, central: CentralCommands, tmp_path: Path
) -> None:
    with running_agent(mosquitto, tmp_path):
        assert send_and_wait(central, "service.restart", {"service": "sync"}).code == "restarting"
        wait_until(lambda: log_count(tmp_path, "simulated system action") == 1, 15, "restart")
        records = [json.loads(line) for line in (tmp_path / "agent.log").read_text().splitlines()
                   if line.startswith("{")]  # fmt: skip
        messages = [r["msg"] for r in records]
        reported = messages.index("command result reported")
        restart = messages.index("simulated system action")
        assert reported < restart
        assert records[restart]["argv"] == [
            "systemctl", "restart", "--no-block", "city-kiosk-sync.service"]  # fmt: skip


def test_sync_commands_config_apply_runs_the_configuration_push(
    mosquitto: Mosquitto, central: CentralCommands, tmp_path: Path
) -> None:
    with running_agent(mosquitto, tmp_path):
        settings = {"policy": {"early_entry_minutes": 20}}
        done = send_and_wait(central, "config.apply", {"version": 1, "settings": settings})
        assert done.code == "applied" and done.detail["version"] == 1
        assert (tmp_path / "pushed-config.json").exists()
        # Every service it names restarted, the agent's own after its result.
        services = done.detail["services"]
        wait_until(
            lambda: log_count(tmp_path, "simulated system action") == len(services), 15, "restarts"
        )
        # The same version again (a new command id): nothing changes, nothing restarts.
        again = send_and_wait(central, "config.apply", {"version": 1, "settings": settings})
        assert again.code == "unchanged"
        assert log_count(tmp_path, "simulated system action") == len(services)
