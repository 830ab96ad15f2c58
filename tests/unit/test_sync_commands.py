"""The agent's command logic without a broker: the clock policy, the desk's
answers and reports, the runner's handlers with the simulated system, and
the personal-data guard of diagnostics."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts.commands import CommandError, CommandResult, key_id
from sync.cli import main as cli_main
from sync.command_runner import HANDLERS, CommandRunner, Outcome, RunContext
from sync.commands import CommandDesk, Verifier
from sync.diagnostics import DiagnosticsSources, clean_line, clean_lines
from sync.ledger import CommandLedger
from sync.outbox import Outbox
from sync.store import Store, open_store
from sync.system import SimSystem, parse_journal
from tests.harness.commands import signed

KEY = Ed25519PrivateKey.generate()
KEYS = {key_id(KEY.public_key()): KEY.public_key()}
RESULTS = "kiosk/v1/devices/dev-a/results"
UNLOCK = {"door": "room-a", "seconds": 5, "reason": "testing"}


def verifier(trusted: bool, now: datetime | None = None) -> Verifier:
    return Verifier(
        KEYS, "dev-a", now=lambda: now or datetime.now(UTC), clock_trusted=lambda: trusted
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(tmp_path / "device.db")


def desk(store: Store, trusted: bool = True, woken: list[str] | None = None) -> CommandDesk:
    ledger = CommandLedger(store)
    outbox = Outbox(store, clock_trusted=lambda: True)
    wake = (woken if woken is not None else []).append
    return CommandDesk(ledger, outbox, verifier(trusted), RESULTS, on_received=wake)


def results(replies: list[Any]) -> list[CommandResult]:
    return [CommandResult.model_validate_json(r.payload) for r in replies]


def test_sync_commands_unsynchronised_clock_refuses_an_unlock() -> None:
    _, payload = signed(KEY, "door.unlock", UNLOCK)
    with pytest.raises(CommandError) as caught:
        verifier(False).verify(payload)
    assert caught.value.code == "clock_untrusted"


def test_sync_commands_unsynchronised_clock_still_runs_a_relock_whatever_the_time() -> None:
    # The device believes it is 1970: by its clock the command is from the future.
    _, payload = signed(KEY, "door.relock", {"door": "room-a"})
    wrong = datetime(1970, 1, 2, tzinfo=UTC)
    command, expires = verifier(False, now=wrong).verify(payload)
    assert command.name == "door.relock"
    assert expires == pytest.approx(wrong.timestamp() + 300)
    with pytest.raises(CommandError) as caught:
        verifier(True, now=wrong).verify(payload)
    assert caught.value.code == "not_yet_valid"


def test_sync_commands_unsynchronised_clock_still_checks_the_signature() -> None:
    other = Ed25519PrivateKey.generate()
    _, payload = signed(other, "door.relock", {"door": "room-a"})
    with pytest.raises(CommandError) as caught:
        verifier(False).verify(payload)
    assert caught.value.code == "unknown_key"


def test_sync_commands_desk_takes_once_and_answers_repeats_from_the_ledger(store: Store) -> None:
    woken: list[str] = []
    d = desk(store, woken=woken)
    cid, payload = signed(KEY, "door.unlock", UNLOCK)
    [first] = d.on_command(payload, RESULTS, b"c1")
    assert first.correlation == b"c1" and results([first])[0].state == "delivered"
    assert woken == ["lockctl"]
    [again] = d.on_command(payload, RESULTS, b"c2")
    assert results([again])[0].state == "delivered" and woken == ["lockctl"]
    d.ledger.claim("lockctl", time.time())
    d.ledger.finish(cid, "done", "unlocked", "", time.time(), detail={"door": "room-a"})
    [stored] = d.on_command(payload, None, None)
    assert stored.correlation == cid.encode()
    assert (results([stored])[0].state, results([stored])[0].code) == ("done", "unlocked")


def test_sync_commands_desk_records_refusals_and_reports_them_once(store: Store) -> None:
    d = desk(store)
    old = datetime.now(UTC) - timedelta(hours=1)
    cid, payload = signed(KEY, "door.relock", {"door": "room-a"}, issued_at=old)
    [reply] = d.on_command(payload, "kiosk/v1/devices/other/results", b"x")
    assert (results([reply])[0].state, results([reply])[0].code) == ("expired", "expired")
    assert reply.report_id == cid  # tracked: not sent again by the report loop
    assert d.due_reports({cid}) == []
    d.reported(cid)
    assert d.due_reports(set()) == []
    [event] = d.outbox.pending()
    assert event.type == "device.command"
    assert event.data == {
        "command": cid,
        "action": "door.relock",
        "state": "expired",
        "code": "expired",
        "issued_by": "staff:tester",
        "door": "room-a",
    }


def test_sync_commands_desk_cannot_answer_what_has_no_id(store: Store) -> None:
    d = desk(store)
    assert d.on_command(b"not json", RESULTS, b"x") == []
    assert d.on_command(json.dumps({"id": "nope", "name": "x"}).encode(), RESULTS, None) == []


def test_sync_commands_desk_reports_results_of_other_processes(store: Store) -> None:
    d = desk(store)
    cid, payload = signed(KEY, "door.relock", {"door": "room-a"})
    d.on_command(payload, RESULTS, None)
    assert d.due_reports(set()) == []  # not finished yet
    d.ledger.claim("lockctl", time.time())
    d.ledger.finish(cid, "done", "relocked", "", time.time(), detail={"phone": "0312345678"})
    [report] = d.due_reports(set())
    # A detail the personal-data guard refuses is withheld, not sent.
    assert results([report])[0].detail == {} and report.report_id == cid


def test_sync_commands_housekeeping_expires_unclaimed_commands(store: Store) -> None:
    d = desk(store)
    cid, payload = signed(KEY, "door.relock", {"door": "room-a"}, lifetime=timedelta(seconds=1))
    d.on_command(payload, RESULTS, None)
    with store.write() as conn:  # its process never came: let its time pass
        conn.execute("UPDATE commands SET expires = ? WHERE id = ?", (time.time() - 1, cid))
    d.housekeeping(0.0)
    [report] = d.due_reports(set())
    assert results([report])[0].state == "expired"


def runner(store: Store, config: Path, system: SimSystem) -> tuple[CommandRunner, list[str]]:
    deferred: list[str] = []

    def defer(command_id: str, action: Callable[[], None]) -> None:
        deferred.append(command_id)
        action()  # as the agent does once the result's PUBACK came

    outbox = Outbox(store, clock_trusted=lambda: True)
    context = RunContext(
        str(config), system, None, DiagnosticsSources("dev-a", outbox, system, lambda: None),
        defer=defer,
    )  # fmt: skip
    v = verifier(True)
    return CommandRunner(CommandLedger(store), lambda b: v.verify(b)[0], context), deferred


def run_one(store: Store, r: CommandRunner, name: str, args: dict[str, Any]) -> tuple[str, Any]:
    d = desk(store)
    cid, payload = signed(KEY, name, args)
    d.on_command(payload, RESULTS, None)
    r.run_pending()
    entry = d.ledger.get(cid)
    assert entry is not None
    return cid, entry


def test_sync_commands_restart_of_the_agent_waits_for_its_result(
    store: Store, tmp_path: Path
) -> None:
    system = SimSystem()
    r, deferred = runner(store, tmp_path / "device.toml", system)
    cid, entry = run_one(store, r, "service.restart", {"service": "sync"})
    assert (entry.state, entry.code) == ("done", "restarting")
    assert deferred == [cid]
    assert system.actions == [["systemctl", "restart", "--no-block", "city-kiosk-sync.service"]]


def test_sync_commands_config_reload_with_an_invalid_file_restarts_nothing(
    store: Store, tmp_path: Path
) -> None:
    config = tmp_path / "device.toml"
    config.write_text('[device]\nid = "dev-a"\nfacility = "fac-1"\n[sync]\nbatch_size = 0\n')
    system = SimSystem()
    r, deferred = runner(store, config, system)
    _, entry = run_one(store, r, "config.reload", {})
    assert (entry.state, entry.code) == ("failed", "config_invalid")
    assert "batch_size" in entry.message
    assert system.actions == [] and deferred == []


def test_sync_commands_config_apply_is_not_supported_until_plugged_in(
    store: Store, tmp_path: Path
) -> None:
    r, _ = runner(store, tmp_path / "device.toml", SimSystem())
    _, entry = run_one(store, r, "config.apply", {"version": 1, "settings": {}})
    assert (entry.state, entry.code) == ("failed", "not_supported")
    r.handlers = {**HANDLERS, "config.apply": lambda c, ctx: Outcome("done", "applied", "", {})}
    _, entry = run_one(store, r, "config.apply", {"version": 2, "settings": {}})
    assert (entry.state, entry.code) == ("done", "applied")


def test_sync_commands_diagnostics_without_central_fails_with_a_code(
    store: Store, tmp_path: Path
) -> None:
    r, _ = runner(store, tmp_path / "device.toml", SimSystem())
    _, entry = run_one(store, r, "diagnostics.collect", {})
    assert (entry.state, entry.code) == ("failed", "upload_failed")


def test_sync_commands_runner_refuses_a_row_it_cannot_verify(store: Store, tmp_path: Path) -> None:
    # Another process with write access to the store inserts a reboot.
    forged = Ed25519PrivateKey.generate()
    cid, payload = signed(forged, "device.reboot")
    ledger = CommandLedger(store)
    ledger.receive(
        cid, "device.reboot", "agent", payload, expires=time.time() + 60, now=time.time()
    )
    system = SimSystem()
    r, deferred = runner(store, tmp_path / "device.toml", system)
    r.run_pending()
    entry = ledger.get(cid)
    assert entry is not None and (entry.state, entry.code) == ("refused", "unknown_key")
    assert system.actions == [] and deferred == []


def test_sync_commands_log_lines_lose_personal_data() -> None:
    assert clean_line("read 1234 5678 9012 for a@b.example") == "read **** **** **** for <e-mail>"
    assert clean_line("PIN: 1234 entered") == "PIN: **** entered"
    assert clean_line("door room-a unlocked") == "door room-a unlocked"


def test_sync_commands_journal_parsing_skips_noise() -> None:
    text = "\n".join([
        json.dumps({"MESSAGE": "ok", "_SYSTEMD_UNIT": "city-kiosk-sync.service",
                    "PRIORITY": "6", "__REALTIME_TIMESTAMP": "1765000000000000"}),
        "not json",
        json.dumps({"MESSAGE": [104, 105], "SYSLOG_IDENTIFIER": "lockctl"}),
    ])  # fmt: skip
    lines = parse_journal(text)
    assert [(line.unit, line.message) for line in lines] == [
        ("city-kiosk-sync.service", "ok"), ("lockctl", "hi")]  # fmt: skip
    assert lines[0].at.startswith("2025-12-06")
    kept, dropped = clean_lines(lines)
    assert len(kept) == 2 and dropped == 0


def test_sync_commands_cli_lists_the_ledger_without_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "device.toml"
    config.write_text('[device]\nid = "dev-a"\nfacility = "fac-1"\n[store]\npath = "device.db"\n')
    with open_store(tmp_path / "device.db") as store:
        cid, payload = signed(KEY, "door.unlock", {**UNLOCK, "reason": "jammed reader"})
        desk(store).on_command(payload, RESULTS, None)
    assert cli_main(["commands", "--config", str(config)]) == 0
    [line] = capsys.readouterr().out.splitlines()
    entry = json.loads(line)
    assert (entry["id"], entry["name"], entry["target"], entry["state"]) == (
        cid, "door.unlock", "lockctl", "pending")  # fmt: skip
    assert entry["reported"] is False and "jammed" not in line


def test_sync_commands_long_correlation_data_is_not_echoed(store: Store) -> None:
    cid, payload = signed(KEY, "door.relock", {"door": "room-a"})
    [reply] = desk(store).on_command(payload, RESULTS, b"x" * 5000)
    assert reply.correlation == cid.encode()
