"""Remote door commands through the real lockctl daemon on gpiozero mock pins:
a signed command put in the device store's ledger as the sync agent does
(tests/harness/door_commands.py), lockctl verifying it again and running it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lockctl.errors import RequestError
from lockctl.lockdown import STATE_KEY, doors_in_lockdown
from sync.ledger import CommandLedger, LedgerEntry
from sync.store import open_store
from tests.harness.door_commands import CommandSigner, entry, forged, receive
from tests.harness.services import wait_until
from tests.integration.lockctl_daemon import LockDaemon

REASON = "card reader jammed"


@pytest.fixture
def signer() -> CommandSigner:
    return CommandSigner("dev-a")


def unlock(door: str = "room-a", seconds: float = 5, reason: str = REASON) -> dict[str, Any]:
    return {"door": door, "seconds": seconds, "reason": reason}


def make_daemon(folder: Path, signer: CommandSigner, *, trusted: bool = True) -> LockDaemon:
    folder.mkdir(parents=True, exist_ok=True)
    key = signer.write_public_key(folder / "command-key.pem")
    return LockDaemon(folder, command_key=key, clock_trusted=trusted)


@pytest.fixture
def daemon(tmp_path: Path, signer: CommandSigner) -> Iterator[LockDaemon]:
    d = make_daemon(tmp_path / "lockctl", signer)
    d.start()
    yield d
    d.stop()


def finished(daemon: LockDaemon, command_id: str) -> LedgerEntry:
    found: list[LedgerEntry] = []

    def done() -> bool:
        row = entry(daemon.db, command_id)
        found[:] = [row] if row is not None and row.state not in ("pending", "running") else []
        return bool(found)

    wait_until(done, 10, f"command {command_id} finished\n{daemon.log_text()}")
    return found[0]


def run(daemon: LockDaemon, payload: bytes) -> LedgerEntry:
    return finished(daemon, receive(daemon.db, payload))


def energised_ever(daemon: LockDaemon, door: str) -> bool:
    return any(level for _at, level in daemon.door(door)["mock_relay_history"])


def test_lockctl_commands_signed_unlock_energises_relay_and_finishes_done(
    daemon: LockDaemon, signer: CommandSigner
) -> None:
    payload = signer.sign("door.unlock", unlock(seconds=1))
    result = run(daemon, payload)
    assert (result.state, result.code) == ("done", "ok"), result.message
    assert result.detail == {
        "door": "room-a", "seconds": 1.0, "requested": 1.0, "capped": False,
        "relay_energised": True,
    }  # fmt: skip
    assert energised_ever(daemon, "room-a")
    assert not energised_ever(daemon, "room-b")
    unlocked = daemon.wait_event("door.unlocked", door="room-a", reason="remote")
    assert unlocked["data"]["ref"] == result.id
    assert unlocked["data"]["staff_reason"] == REASON
    daemon.wait_event("door.locked", door="room-a", reason="deadline")


def test_lockctl_commands_forged_unlock_refused_relay_never_energised(
    daemon: LockDaemon, signer: CommandSigner
) -> None:
    genuine = signer.sign("door.unlock", unlock(seconds=1))
    result = run(daemon, forged(genuine, seconds=30))
    assert (result.state, result.code) == ("refused", "bad_signature")
    other = CommandSigner("dev-a").sign("door.unlock", unlock(seconds=1))
    assert run(daemon, other).code == "unknown_key"
    time.sleep(0.3)  # a few control-loop passes: nothing may come late
    assert not energised_ever(daemon, "room-a")
    assert daemon.events("door.unlocked") == []


def test_lockctl_commands_unlock_over_the_cap_is_capped_and_relock_ends_it(
    daemon: LockDaemon, signer: CommandSigner
) -> None:
    result = run(daemon, signer.sign("door.unlock", unlock("room-a", 120)))
    assert result.state == "done"
    assert (result.detail["seconds"], result.detail["capped"]) == (30.0, True)
    assert "capped at 30 s" in result.message
    assert daemon.door("room-a")["relay_level"] is True
    relock = run(daemon, signer.sign("door.relock", {"door": "room-a"}))
    assert relock.state == "done"
    assert relock.detail["was_unlocked"] is True
    assert daemon.door("room-a")["relay_level"] is False


def test_lockctl_commands_unknown_door_and_bad_reason_refused(
    daemon: LockDaemon, signer: CommandSigner
) -> None:
    unknown = run(daemon, signer.sign("door.unlock", unlock("cellar", 5)))
    assert (unknown.state, unknown.code) == ("refused", "unknown_door")
    assert "room-a" in unknown.message
    lockdown = run(daemon, signer.sign("door.lockdown", {"door": "cellar", "reason": REASON}))
    assert lockdown.code == "unknown_door"
    personal = run(daemon, signer.sign("door.unlock", unlock(reason="for 1234 5678 9012")))
    assert (personal.state, personal.code) == ("refused", "bad_reason")
    assert not energised_ever(daemon, "room-a")
    with open_store(daemon.db) as store:
        assert store.get_state(STATE_KEY) is None


def test_lockctl_commands_lockdown_refuses_checkin_survives_restart_keeps_egress(
    tmp_path: Path, signer: CommandSigner
) -> None:
    daemon = make_daemon(tmp_path / "d", signer)
    daemon.start()
    try:
        with daemon.client() as client:
            client.unlock("room-a", seconds=30, reason="check-in", ref="r-1")
        result = run(daemon, signer.sign("door.lockdown", {"door": "room-a", "reason": REASON}))
        assert result.state == "done", result.message
        assert result.detail["started"] == ["room-a"]
        assert daemon.door("room-a")["relay_level"] is False  # relocked at once
        daemon.wait_event("door.locked", door="room-a", reason="lockdown")
        daemon.wait_event("door.lockdown", door="room-a", ref=result.id)
        assert daemon.status()["lockdown"] == ["room-a"]
        with daemon.client() as client:
            for reason in ("check-in", "staff", "remote"):
                with pytest.raises(RequestError) as refused:
                    client.unlock("room-a", seconds=5, reason=reason)
                assert refused.value.code == "lockdown"
                assert "lockdown" in refused.value.message
            assert client.unlock("room-b", seconds=0.5)["relay_energised"] is True
        remote = run(daemon, signer.sign("door.unlock", unlock("room-a", 5)))
        assert (remote.state, remote.code) == ("refused", "lockdown")
        daemon.stop()
        with open_store(daemon.db) as store:
            assert doors_in_lockdown(store.get_state(STATE_KEY)) == {"room-a"}
        daemon.start()
        assert daemon.door("room-a")["lockdown"]["ref"] == result.id
        with daemon.client() as client:
            with pytest.raises(RequestError, match="lockdown"):
                client.unlock("room-a", seconds=5, reason="check-in")
            # Free egress: the exit button still opens the door from inside.
            client.request("mock", door="room-a", input="exit_button", state="pressed")
            daemon.wait_event("door.unlocked", door="room-a", reason="exit_button")
            assert daemon.door("room-a")["relay_level"] is True
            client.request("mock", door="room-a", input="exit_button", state="released")
        release = run(daemon, signer.sign("door.release", {"door": "room-a"}))
        assert (release.state, release.detail["released"]) == ("done", ["room-a"])
        daemon.wait_event("door.released", door="room-a", ref=release.id)
        assert daemon.status()["lockdown"] == []
        with daemon.client() as client:
            assert client.unlock("room-a", seconds=0.5, reason="check-in")["relay_energised"]
        with open_store(daemon.db) as store:
            assert doors_in_lockdown(store.get_state(STATE_KEY)) == frozenset()
    finally:
        daemon.stop()


def test_lockctl_commands_lockdown_of_every_door(daemon: LockDaemon, signer: CommandSigner) -> None:
    result = run(daemon, signer.sign("door.lockdown", {"door": "*", "reason": "fire drill"}))
    assert result.detail["started"] == ["room-a", "room-b"]
    with daemon.client() as client, pytest.raises(RequestError, match="lockdown"):
        client.unlock("room-b", seconds=5, reason="check-in")
    run(daemon, signer.sign("door.release", {"door": "room-b"}))
    assert daemon.status()["lockdown"] == ["room-a"]
    run(daemon, signer.sign("door.release", {"door": "*"}))
    assert daemon.status()["lockdown"] == []
    run(daemon, signer.sign("door.unlock", unlock("room-a", 5)))
    run(daemon, signer.sign("door.unlock", unlock("room-b", 5)))
    relocked = run(daemon, signer.sign("door.relock", {"door": "*"}))
    assert relocked.state == "done"
    assert set(relocked.detail["doors"]) == {"room-a", "room-b"}
    assert not any(d["relay_energised"] for d in daemon.status()["doors"])


def test_lockctl_commands_untrusted_clock_refuses_unlock_but_locks(
    tmp_path: Path, signer: CommandSigner
) -> None:
    daemon = make_daemon(tmp_path / "d", signer, trusted=False)
    daemon.start()
    try:
        opened = run(daemon, signer.sign("door.unlock", unlock("room-a", 5)))
        assert (opened.state, opened.code) == ("refused", "clock_untrusted")
        lockdown = run(daemon, signer.sign("door.lockdown", {"door": "room-a", "reason": REASON}))
        assert lockdown.state == "done"
        release = run(daemon, signer.sign("door.release", {"door": "room-a"}))
        assert release.code == "clock_untrusted"
        assert daemon.status()["lockdown"] == ["room-a"]
        assert not energised_ever(daemon, "room-a")
    finally:
        daemon.stop()


def test_lockctl_commands_left_running_by_a_crash_finish_interrupted_never_run(
    tmp_path: Path, signer: CommandSigner
) -> None:
    daemon = make_daemon(tmp_path / "d", signer)
    daemon.start()
    daemon.stop()
    command_id = receive(daemon.db, signer.sign("door.unlock", unlock("room-a", 5)))
    with open_store(daemon.db) as store:
        assert [e.id for e in CommandLedger(store).claim("lockctl", time.time())] == [command_id]
    daemon.start()  # as after a crash with the command claimed
    try:
        result = finished(daemon, command_id)
        assert (result.state, result.code) == ("failed", "interrupted")
        time.sleep(0.3)
        assert not energised_ever(daemon, "room-a")
    finally:
        daemon.stop()
