"""A full disk never wedges a device: the store on a small real filesystem
(tmpfs, mounted for the test: tests/harness/smallfs.py) that fills up before
and during appends.

Needs root to mount the filesystem (CI runs the suite as root); elsewhere
these tests are skipped with the reason.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sync.errors import StoreFullError
from sync.health import HealthCollector
from sync.outbox import Outbox
from sync.reservations import ReservationCache, ReservationSync
from sync.store import open_store
from tests.harness.mosquitto import Mosquitto
from tests.harness.services import wait_until
from tests.harness.smallfs import fill, mounted_tmpfs
from tests.harness.syncdev import CentralStub, agent_process, write_device_config

ROOT = Path(__file__).resolve().parents[2]
RESERVE = 256 * 1024


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs of its own: filling it fills nothing else."""
    with mounted_tmpfs(tmp_path / "fs") as mount:
        yield mount


def run_sync(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sync", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def device_config(folder: Path, text: str = "") -> Path:
    key = folder / "credential.key"
    key.write_text(os.urandom(32).hex())
    config = folder / "device.toml"
    config.write_text(
        text.replace("[store]\n", f"[store]\nreserve_mb = {RESERVE / 2**20}\n")
        if text
        else f'[device]\nid = "dev-a"\nfacility = "fac-1"\n[store]\npath = "{folder}/device.db"\n'
        f"reserve_mb = {RESERVE / 2**20}\n"
    )
    with config.open("a") as out:
        out.write(f'[reader]\ncredential_key_file = "{key}"\n')
        out.write('[[doors]]\nid = "room-a"\nrelay_pin = 17\n')
    return config


def test_store_full_disk_append_refused_and_connection_usable(small_fs: Path) -> None:
    with open_store(small_fs / "device.db", reserve_bytes=RESERVE) as store:
        outbox = Outbox(store)
        ids = [outbox.append("test.before", {"n": n, "pad": "x" * 2000}).id for n in range(20)]
        assert store.reserve.held()
        filler = fill(small_fs)
        # The disk filled under a writer that took the reserve for granted:
        # SQLite fails the write itself; the store rolls back, says so in its
        # own error and gives the reserve back for draining.
        with pytest.raises(StoreFullError) as err:
            outbox.append("test.during", {"pad": "y" * 6000})
        assert "disk is full" in str(err.value) and "New events are refused" in str(err.value)
        assert not store.conn.in_transaction
        assert not store.reserve.held()
        # Further appends are refused up front: they never eat the reserve.
        with pytest.raises(StoreFullError):
            outbox.append("test.during", {"n": 1})
        assert store.space_low()
        health = HealthCollector(
            store.path, outbox, ReservationSync(ReservationCache(store, "fac-1")), lambda: 1
        ).collect()
        assert health.store_full is True
        # Draining and the agent's state rows still commit on the full disk.
        store.set_state("agent.link", '{"connected": true, "at": 0}')
        assert outbox.confirm(ids[:15]) == 15
        assert [e.seq for e in outbox.pending()] == list(range(16, 21))
        assert store.integrity_problems() == []
        filler.unlink()
        # Space is back: the reserve is put back and appends go on, seq unbroken.
        assert outbox.append("test.after").seq == 21
        assert store.reserve.held() and not store.space_low()


def test_store_full_disk_cli_one_clear_line_and_read_only_tools(small_fs: Path) -> None:
    config = device_config(small_fs)
    first = run_sync("append", "test.first", "--data", '{"n": 1}', "--config", str(config))
    assert first.returncode == 0, first.stderr
    filler = fill(small_fs)
    # A new process on the full disk: it opens (the reserve pays for the
    # store's index file), the append is refused in one line, exit 4.
    refused = run_sync("append", "test.second", "--data", '{"n": 2}', "--config", str(config))
    assert refused.returncode == 4
    assert "Traceback" not in refused.stderr
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "the disk is full" in errors[0]
    listed = run_sync("outbox", "--config", str(config))
    assert listed.returncode == 0, listed.stderr
    assert [json.loads(line)["type"] for line in listed.stdout.splitlines()] == ["test.first"]
    check = run_sync("store-check", "--config", str(config))
    assert check.returncode == 4, check.stderr
    report = json.loads(check.stdout)
    assert report["integrity"] == "ok" and report["outbox_depth"] == 1
    assert report["disk"]["appends_refused"] is True
    assert "is full: new events are refused" in check.stderr and "Traceback" not in check.stderr
    filler.unlink()
    again = run_sync("append", "test.third", "--data", '{"n": 3}', "--config", str(config))
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["seq"] == 2
    assert run_sync("store-check", "--config", str(config)).returncode == 0


class Driver:
    """A writer process of tests/integration/disk_writers.py."""

    def __init__(self, kind: str, config: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.disk_writers", kind, str(config)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert self.read_line() == "ready", self.proc.stderr.read() if self.proc.stderr else ""

    def read_line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def command(self, line: str) -> list[str]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        out = []
        while (got := self.read_line()) != "done":
            assert got, f"writer died: {self.proc.stderr.read() if self.proc.stderr else ''}"
            out.append(got)
        return out

    def quit(self) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        self.proc.wait(30)
        assert self.proc.returncode == 0
        return self.proc.stderr.read() if self.proc.stderr else ""


def lockctl_status(driver: Driver) -> tuple[int, int, str]:
    _, backlog, written, error = driver.command("status")[0].split()
    return int(backlog), int(written), error


def kiosk_appends(driver: Driver, tag: str, count: int) -> tuple[dict[int, int], int]:
    """Seq per event index of the appends that committed, and how many were refused."""
    ok: dict[int, int] = {}
    refused = 0
    for line in driver.command(f"append {tag} {count}"):
        word, n, rest = line.split()
        if word == "ok":
            ok[int(n)] = int(rest)
        else:
            assert (word, rest) == ("refused", "StoreFullError"), line
            refused += 1
    return ok, refused


def test_store_full_disk_every_writer_then_drain_through_broker(
    small_fs: Path, fresh_mosquitto: Mosquitto, tmp_path: Path
) -> None:
    folder = small_fs / "dev-a"
    config = device_config(
        folder, write_device_config(fresh_mosquitto, folder, "dev-a", "fac-1").read_text()
    )
    kiosk, lock = Driver("kiosk", config), Driver("lockctl", config)
    try:
        before, _ = kiosk_appends(kiosk, "k1", 30)
        lock.command("put l1 30")
        wait_until(lambda: lockctl_status(lock)[0] == 0, 30, "lockctl events written")
        assert len(before) == 30
        filler = fill(small_fs)
        # While full: each writer is refused cleanly and goes on.
        during, refused = kiosk_appends(kiosk, "k2", 20)
        assert refused >= 19 and len(during) + refused == 20
        assert kiosk.command("tap") == ["tap unknown_card"]  # the person still gets an answer
        assert kiosk.command("space") == ["space low"]
        lock.command("put l2 20")
        wait_until(lambda: lockctl_status(lock)[2] == "StoreFullError", 30, "lockctl sees full")
        assert lockctl_status(lock)[0] >= 19  # kept in memory, in order
        # The agent starts on the full disk and drains everything committed.
        central = CentralStub(fresh_mosquitto, tmp_path / "central").start()
        agent = agent_process(config, tmp_path / "agent.log")
        agent.start()
        try:
            committed = 30 + len(during) + 1 + 30 + (20 - lockctl_status(lock)[0])
            wait_until(lambda: central.count() >= committed, 60, f"{committed} at central")
            wait_until(lambda: outbox_depth(folder / "device.db") == 0, 30, "drained while full")
            assert agent.check_alive()
            filler.unlink()
            # Space is back: every writer appends again, lockctl's backlog flushes.
            after, refused_after = kiosk_appends(kiosk, "k3", 20)
            assert refused_after == 0 and len(after) == 20
            wait_until(lambda: lockctl_status(lock)[0] == 0, 30, "lockctl backlog written")
            total = 30 + len(during) + 20 + 1 + 30 + 20
            wait_until(lambda: central.count() == total, 60, f"{total} events at central")
            wait_until(lambda: outbox_depth(folder / "device.db") == 0, 30, "drained again")
            assert agent.check_alive()
        finally:
            agent.stop()
            central.stop()
        assert "Traceback" not in kiosk.quit() + lock.quit()
    finally:
        for driver in (kiosk, lock):
            if driver.proc.poll() is None:
                driver.proc.kill()
    rows = central.query("SELECT seq, type, data FROM events ORDER BY seq")
    seqs = [int(str(r[0])) for r in rows]
    assert seqs == list(range(1, len(rows) + 1))  # every seq once, none missing
    by_writer: dict[str, list[int]] = {}
    seq_of: dict[tuple[str, int], int] = {}
    for seq, _type, data in rows:
        body = ast.literal_eval(str(data))  # the stub keeps the data as a Python literal
        if "writer" in body:
            by_writer.setdefault(body["writer"], []).append(body["n"])
            seq_of[(body["writer"], body["n"])] = int(str(seq))
    assert by_writer["k1"] == list(range(30)) and by_writer["k3"] == list(range(20))
    assert by_writer.get("k2", []) == sorted(during)
    assert by_writer["l1"] == list(range(30)) and by_writer["l2"] == list(range(20))
    for tag, appended in (("k1", before), ("k2", during), ("k3", after)):
        assert {n: seq_of[(tag, n)] for n in appended} == appended


def outbox_depth(db: Path) -> int:
    with open_store(db, read_only=True) as store:
        return Outbox(store).depth()


def test_store_full_disk_agent_state_writes_survive(small_fs: Path) -> None:
    """The agent's own writes (session, link) on a full disk without its reserve."""
    with open_store(small_fs / "device.db", reserve_bytes=RESERVE) as store:
        fill(small_fs)
        started = time.monotonic()
        store.set_state("agent.session", "1")  # the reserve pays for it
        assert not store.reserve.held()
        store.set_state("agent.session", "2")
        assert store.get_state("agent.session") == "2"
        assert time.monotonic() - started < 5
