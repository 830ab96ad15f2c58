"""The lock controller through the real daemon process and its socket, on
gpiozero MockFactory pins, with a real SQLite outbox."""

from __future__ import annotations

import grp
import os
import pwd
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lockctl.errors import RequestError
from tests.harness.services import wait_until
from tests.integration.lockctl_daemon import ROOT, LockDaemon


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[LockDaemon]:
    d = LockDaemon(tmp_path / "lockctl")
    d.start()
    yield d
    d.stop()


def falling_edge_after(history: list[list[Any]], t: float) -> float:
    return float(next(at for at, level in history if at >= t and not level))


def test_lockctl_unlock_energises_relay_then_relocks_at_deadline(daemon: LockDaemon) -> None:
    with daemon.client() as client:
        sent = time.monotonic()
        reply = client.unlock("room-a", seconds=0.5, reason="check-in", ref="res-42")
    assert reply["relay_energised"] is True
    assert reply["capped"] is False
    assert reply["deadline_monotonic"] == pytest.approx(sent + 0.5, abs=0.2)
    assert daemon.door("room-a")["relay_level"] is True
    assert daemon.door("room-b")["relay_level"] is False
    wait_until(lambda: daemon.door("room-a")["relay_level"] is False, 5, "relock")
    history = daemon.door("room-a")["mock_relay_history"]
    relocked = falling_edge_after(history, reply["deadline_monotonic"] - 0.2)
    assert 0 <= relocked - reply["deadline_monotonic"] < 0.1
    unlocked = daemon.wait_event("door.unlocked", door="room-a")
    assert unlocked["data"]["reason"] == "check-in"
    assert unlocked["data"]["ref"] == "res-42"
    daemon.wait_event("door.locked", door="room-a", reason="deadline")


def test_lockctl_sigterm_while_unlocked_relocks_and_exits_0(daemon: LockDaemon) -> None:
    with daemon.client() as client:
        client.unlock("room-a", seconds=30, reason="staff")
    assert daemon.door("room-a")["relay_level"] is True
    assert daemon.proc is not None and daemon.proc.proc is not None
    daemon.proc.signal(signal.SIGTERM)
    assert daemon.proc.proc.wait(10) == 0
    stopped = [line for line in daemon.log_lines() if line["msg"].startswith("lockctl stopped")]
    assert stopped and stopped[-1]["relay_levels"] == {"room-a": False, "room-b": False}
    daemon.wait_event("door.locked", door="room-a", reason="shutdown")
    assert daemon.wait_event("lockctl.stopped")["data"] == {"reason": "SIGTERM", "clean": True}
    assert not daemon.socket.exists()


def test_lockctl_sigkill_restart_locked_before_socket_accepts(daemon: LockDaemon) -> None:
    first = daemon.wait_event("lockctl.started")
    assert first["data"]["unclean_previous_stop"] is False
    with daemon.client() as client:
        client.unlock("room-a", seconds=30)
    assert daemon.proc is not None
    daemon.proc.kill()
    # Restart with the mock relay lines high, as if a line had stayed energised.
    daemon.start("--mock-relays-start-energised", wait=False)
    wait_until(lambda: daemon.socket.exists() and daemon.ready(), 20, "restart")
    status = daemon.status()
    for door in status["doors"]:
        assert door["relay_level"] is False
        history = door["mock_relay_history"]
        stuck_at = next(at for at, level in history if level)  # the simulated stuck line
        forced_low = falling_edge_after(history, stuck_at)
        assert forced_low <= status["startup"]["relays_locked"] < status["startup"]["listening"]
    started = daemon.wait_event("lockctl.started", unclean_previous_stop=True)
    assert started["seq"] > first["seq"]


def test_lockctl_concurrent_clients(daemon: LockDaemon) -> None:
    errors: list[BaseException] = []
    replies: list[dict[str, Any]] = []
    watched: list[dict[str, Any]] = []
    watcher = daemon.client()
    stream = watcher.watch()

    def watch() -> None:
        for message in stream:
            watched.append(message)

    def work(n: int) -> None:
        try:
            with daemon.client() as client:
                for i in range(20):
                    door = "room-a" if (n + i) % 2 else "room-b"
                    replies.append(client.unlock(door, seconds=0.2, ref=f"c{n}-{i}"))
                    replies.append(client.status())
                    if i % 5 == 0:
                        replies.append(client.lock(door))
        except BaseException as exc:
            errors.append(exc)

    threading.Thread(target=watch, daemon=True).start()
    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(replies) == 8 * (40 + 4)
    assert all(r["ok"] for r in replies)
    wait_until(lambda: len(daemon.events("door.unlocked")) == 160, 20, "160 unlock events")
    wait_until(lambda: sum(m["event"] == "door.unlocked" for m in watched) == 160, 10, "watcher")
    wait_until(
        lambda: all(not d["relay_level"] for d in daemon.status()["doors"]), 5, "all relocked"
    )
    watcher.close()


def send_lines(sock: socket.socket, payload: bytes, replies: int) -> list[bytes]:
    sock.sendall(payload)
    buf = b""
    deadline = time.monotonic() + 10
    while buf.count(b"\n") < replies and time.monotonic() < deadline:
        buf += sock.recv(65536)
    return buf.splitlines()


def test_lockctl_bad_requests_get_errors_and_connection_survives(daemon: LockDaemon) -> None:
    import json

    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(daemon.socket))
        sock.settimeout(10)
        payload = (
            b"{oops\n"
            + b'{"op": "fly"}\n'
            + b'{"op": "unlock", "door": "nowhere", "seconds": 5}\n'
            + b'{"op": "unlock", "door": "room-a", "seconds": -3}\n'
            + b'{"op": "unlock", "door": "room-a", "seconds": 1e12}\n'
            + b"x" * 100_000 + b"\n"
            + b'{"op": "status", "id": 9}\n'
        )  # fmt: skip
        lines = send_lines(sock, payload, 7)
    replies = [json.loads(line) for line in lines]
    codes = [r.get("error", {}).get("code") for r in replies]
    assert codes == [
        "bad_json", "unknown_op", "unknown_door", "bad_seconds", "bad_seconds", "too_large", None,
    ]  # fmt: skip
    assert replies[-1]["id"] == 9
    assert all(not d["relay_level"] for d in replies[-1]["doors"])
    assert daemon.events("door.unlocked") == []


def test_lockctl_huge_request_is_capped(daemon: LockDaemon) -> None:
    with daemon.client() as client:
        reply = client.unlock("room-b", seconds=3600, reason="staff")
    assert reply["capped"] is True
    assert reply["seconds"] == pytest.approx(30)


def test_lockctl_cli_bad_input_clear_errors(daemon: LockDaemon) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lockctl", *args, "--config", str(daemon.config)],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    unknown = cli("unlock", "attic")
    assert unknown.returncode == 1
    assert "no door 'attic'" in unknown.stderr
    negative = cli("unlock", "room-a", "--seconds", "-5")
    assert negative.returncode == 1
    assert "more than 0" in negative.stderr
    assert "Traceback" not in negative.stderr + unknown.stderr
    assert daemon.door("room-a")["relay_level"] is False
    ok = cli("unlock", "room-a", "--seconds", "2")
    assert ok.returncode == 0, ok.stderr
    assert daemon.door("room-a")["relay_level"] is True
    assert cli("lock", "room-a").returncode == 0
    assert daemon.door("room-a")["relay_level"] is False
    status = cli("status")
    assert status.returncode == 0
    assert '"room-b"' in status.stdout
    absent = subprocess.run(
        [sys.executable, "-m", "lockctl", "status", "--config", str(daemon.config),
         "--socket", str(daemon.folder / "none.sock")],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert absent.returncode == 6
    assert "not reachable" in absent.stderr


def test_lockctl_contact_forced_open_and_exit_button(tmp_path: Path) -> None:
    daemon = LockDaemon(tmp_path / "d", held_open=0.5)
    daemon.start()
    try:
        with daemon.client() as client:
            client.request("mock", door="room-a", input="contact", state="open")
            daemon.wait_event("door.forced_open", door="room-a")
            assert daemon.door("room-a")["state"] == "forced_open"
            client.request("mock", door="room-a", input="contact", state="closed")
            daemon.wait_event("door.closed", door="room-a", alarm="forced_open")
            client.request("mock", door="room-a", input="exit_button", state="pressed")
            daemon.wait_event("door.unlocked", door="room-a", reason="exit_button")
            assert daemon.door("room-a")["relay_level"] is True
            client.request("mock", door="room-a", input="exit_button", state="released")
            client.request("mock", door="room-a", input="contact", state="open")
            daemon.wait_event("door.opened", door="room-a", authorised=True)
            daemon.wait_event("door.held_open", door="room-a")
            client.request("mock", door="room-a", input="contact", state="closed")
            daemon.wait_event("door.locked", door="room-a", reason="door_closed")
            with pytest.raises(RequestError, match="no exit_button"):
                client.request("mock", door="room-b", input="exit_button", state="pressed")
    finally:
        daemon.stop()


def test_lockctl_reconciliation_reasserts_relay_level(daemon: LockDaemon) -> None:
    with daemon.client() as client:
        client.request("mock", door="room-b", input="relay", state="high")
    wait_until(lambda: daemon.status()["corrections"] >= 1, 5, "a correction")
    assert daemon.door("room-b")["relay_level"] is False
    assert any(line["msg"].startswith("relay level differs") for line in daemon.log_lines())


def test_lockctl_sd_notify_ready_and_watchdog(tmp_path: Path) -> None:
    notify_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.settimeout(10)
        daemon = LockDaemon(tmp_path / "d")
        daemon.start(env={"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "200000"})
        try:
            received = [notify.recv(4096).decode() for _ in range(4)]
            assert received[0].startswith("READY=1")
            assert received[1:] == ["WATCHDOG=1"] * 3
            assert daemon.status()["watchdog"] == pytest.approx(0.1)
            assert daemon.proc is not None
            daemon.proc.signal(signal.SIGTERM)
            rest = []
            while "STOPPING=1" not in rest:
                rest.append(notify.recv(4096).decode())
        finally:
            daemon.stop()


def test_lockctl_socket_mode_0660_with_group(tmp_path: Path) -> None:
    group = grp.getgrgid(os.getgid()).gr_name
    daemon = LockDaemon(tmp_path / "d", group=group)
    daemon.start()
    try:
        info = daemon.socket.stat()
        assert stat.S_IMODE(info.st_mode) == 0o660
        assert info.st_gid == os.getgid()
    finally:
        daemon.stop()


UNLOCK_AS_OTHER_USER = """
import json, socket, sys
try:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(sys.argv[1])
        s.sendall(b'{"op": "unlock", "door": "room-a", "seconds": 5, "reason": "staff"}\\n')
        print("answered", json.loads(s.makefile().readline())["ok"])
except PermissionError:
    print("refused")
"""


def test_lockctl_socket_unlock_refused_to_users_outside_its_group() -> None:
    """The attack: a device process that is not the kiosk (say the sync agent)
    asks lockctl to unlock a door. Only the socket group's members get through."""
    nobody = pwd.getpwnam("nobody")
    group = grp.getgrnam("users")  # a group "nobody" is not in (the kiosk's, here)
    with tempfile.TemporaryDirectory(prefix="lockctl-unlock-") as base:
        Path(base).chmod(0o755)  # world-traversable down to lockctl's own folder
        daemon = LockDaemon(Path(base) / "d", group=group.gr_name)
        daemon.start()
        try:
            folder = daemon.socket.parent.stat()
            assert (stat.S_IMODE(folder.st_mode), folder.st_gid) == (0o750, group.gr_gid)

            def unlock_as(extra_groups: list[int]) -> str:
                done = subprocess.run(
                    ["/usr/bin/python3", "-I", "-c", UNLOCK_AS_OTHER_USER, str(daemon.socket)],
                    user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=extra_groups,
                    capture_output=True, text=True, timeout=30, check=False,
                )  # fmt: skip
                return done.stdout.strip() + done.stderr

            assert unlock_as([]) == "refused"
            assert daemon.door("room-a")["relay_level"] is False
            assert unlock_as([group.gr_gid]) == "answered True"
            assert daemon.door("room-a")["relay_level"] is True
        finally:
            daemon.stop()


def test_lockctl_unknown_group_and_bad_config_fail_clearly(tmp_path: Path) -> None:
    daemon = LockDaemon(tmp_path / "d", group="no-such-group-xyz")
    result = subprocess.run(
        [sys.executable, "-m", "lockctl", "serve", "--config", str(daemon.config)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "no-such-group-xyz" in result.stderr
    assert "Traceback" not in result.stderr
    daemon.config.write_text(daemon.config.read_text().replace("relay_pin = 17", "relay_pin = 40"))
    result = subprocess.run(
        [sys.executable, "-m", "lockctl", "serve", "--config", str(daemon.config)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 3
    assert "doors.0.relay_pin" in result.stderr


def test_lockctl_unusable_store_does_not_stop_the_doors(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store's folder should be")
    daemon = LockDaemon(tmp_path / "d", store=str(blocker / "device.db"))
    daemon.start()
    try:
        with daemon.client() as client:
            assert client.unlock("room-a", seconds=0.3)["relay_energised"] is True
        wait_until(lambda: daemon.door("room-a")["relay_level"] is False, 5, "relock")
        events = daemon.status()["events"]
        assert events["store_error"]
        assert events["backlog"] >= 3  # started, unlocked, locked: kept, not lost
    finally:
        daemon.stop()


def test_lockctl_signal_patterns_play_on_buzzer_and_led(daemon: LockDaemon) -> None:
    with daemon.client() as client:
        reply = client.request("signal", door="room-a", pattern="granted")
        assert reply["pattern"] == "granted" and reply["seconds"] > 1
        wait_until(lambda: daemon.door("room-a")["indicators"]["led"] is True, 2, "LED on")
        # The pattern changes no lock state.
        assert daemon.door("room-a")["relay_level"] is False
        wait_until(lambda: daemon.door("room-a")["indicators"]["led"] is False, 5, "pattern over")
        with pytest.raises(RequestError) as err:
            client.request("signal", door="room-a", pattern="disco")
        assert err.value.code == "bad_request"
        with pytest.raises(RequestError):
            client.request("signal", door="nope", pattern="denied")
