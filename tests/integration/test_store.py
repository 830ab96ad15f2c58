"""The device store and outbox on real SQLite files, with real processes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from sync.errors import StoreCorruptError, StoreTooNewError, StoreUnavailableError
from sync.outbox import Outbox
from sync.store import MIGRATION_SET, SCHEMA_VERSION, open_store

ROOT = Path(__file__).resolve().parents[2]


def writer(db: Path, count: int, tag: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.outbox_writer", str(db), str(count), tag],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_outbox_four_processes_append_concurrently(tmp_path: Path) -> None:
    db = tmp_path / "device.db"  # not created yet: the writers race to migrate it
    procs = [writer(db, 5000, f"w{i}") for i in range(4)]
    outputs = [p.communicate(timeout=240) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    with open_store(db) as store:
        rows = store.query("SELECT seq, data FROM outbox ORDER BY seq")
    assert len(rows) == 20000
    seqs = [r["seq"] for r in rows]
    assert seqs == sorted(set(seqs))
    by_writer: dict[str, list[int]] = {}
    for row in rows:
        data = json.loads(row["data"])
        by_writer.setdefault(data["writer"], []).append(data["index"])
    # Each writer's events appear in the order it appended them, none missing.
    assert by_writer == {f"w{i}": list(range(5000)) for i in range(4)}
    # Every seq a writer was given is in the store.
    returned = [int(s) for out, _ in outputs for s in out.split()[1:]]
    assert sorted(returned) == seqs


def test_outbox_survives_sigkill_mid_stream(tmp_path: Path) -> None:
    db = tmp_path / "device.db"
    proc = writer(db, 1_000_000, "killed")
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    returned = [int(proc.stdout.readline()) for _ in range(300)]
    os.kill(proc.pid, signal.SIGKILL)
    rest = proc.stdout.read()  # seqs printed before the kill landed
    proc.wait(10)
    returned += [int(s) for s in rest.split()]
    with open_store(db) as store:
        assert store.integrity_problems() == []
        stored = {r["seq"] for r in store.query("SELECT seq FROM outbox")}
        # Appending again continues after the highest seq ever handed out.
        after = Outbox(store).append("test.after_kill")
    assert set(returned) <= stored
    assert after.seq > max(stored)


def test_outbox_append_confirm_pending(tmp_path: Path) -> None:
    with open_store(tmp_path / "d.db") as store:
        outbox = Outbox(store, clock_trusted=lambda: False)
        events = [outbox.append("door.unlocked", {"door": "a", "n": i}) for i in range(5)]
        assert [e.seq for e in outbox.pending(limit=3)] == [1, 2, 3]
        assert outbox.pending(after_seq=4)[0].id == events[4].id
        assert events[0].clock_trusted is False
        assert events[0].at.endswith(("+00:00", "Z")) or "+" in events[0].at
        outbox.mark_sent([1, 2])
        assert outbox.confirm([events[0].id, events[1].id, "unknown-id"]) == 2
        assert outbox.depth() == 3
        # seq keeps increasing after deletes (AUTOINCREMENT)
        assert outbox.append("door.locked").seq == 6


def test_store_refuses_newer_schema(tmp_path: Path) -> None:
    db = tmp_path / "device.db"
    open_store(db).close()
    conn = sqlite3.connect(db)
    conn.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES (?, ?, ?)",
        (MIGRATION_SET, "m099_from_the_future", "2030-01-01"),
    )
    conn.commit()
    conn.close()
    with pytest.raises(StoreTooNewError) as err:
        open_store(db)
    assert "newer version" in str(err.value)
    assert "m099_from_the_future" in str(err.value)
    assert str(db) in str(err.value)


def test_store_refuses_corrupt_file(tmp_path: Path) -> None:
    db = tmp_path / "device.db"
    db.write_bytes(b"this is not a database at all" * 200)
    with pytest.raises(StoreCorruptError) as err:
        open_store(db)
    assert "move the file aside" in str(err.value)
    assert db.read_bytes().startswith(b"this is not")  # left untouched for analysis


def test_store_unwritable_location(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(StoreUnavailableError) as err:
        open_store(blocker / "device.db")
    assert "folder cannot be created" in str(err.value)


def test_store_read_only_file(tmp_path: Path) -> None:
    db = tmp_path / "device.db"
    open_store(db).close()
    uri_conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)  # sanity: file is valid
    uri_conn.close()
    if os.geteuid() == 0:
        # root ignores file modes; make the folder a read-only bind mount instead
        ro = tmp_path / "ro"
        ro.mkdir()
        (ro / "device.db").write_bytes(db.read_bytes())
        mounted = subprocess.run(
            ["unshare", "-m", "sh", "-c",
             f"mount --bind -o ro {ro} {ro} && {sys.executable} -m sync store-check"
             f" --config {write_config(tmp_path, ro / 'device.db')}"],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert mounted.returncode == 4, mounted.stderr
        assert "cannot" in mounted.stderr
        return
    db.chmod(0o444)
    with pytest.raises(StoreUnavailableError):
        open_store(db)


def write_config(tmp_path: Path, store_path: Path) -> Path:
    config = tmp_path / "device.toml"
    config.write_text(f'[device]\nid = "t1"\nfacility = "f1"\n[store]\npath = "{store_path}"\n')
    return config


def test_store_schema_version_recorded(tmp_path: Path) -> None:
    with open_store(tmp_path / "d.db") as store:
        assert store.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION
        assert store.query("PRAGMA journal_mode")[0][0] == "wal"
        assert store.query("PRAGMA synchronous")[0][0] == 2  # FULL
