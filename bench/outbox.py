"""Durable outbox append rate against a raw sqlite3 baseline, in the same run.

    python bench/outbox.py [--events 2000] [--writers 4] [--json]

Four measurements, each as ours vs raw with the same durability (WAL,
``synchronous=FULL``, same columns): one event per commit; batches of 100
per commit; and N concurrent writer processes, one event per commit. The raw
baseline is a plain ``sqlite3`` INSERT + COMMIT loop with no validation,
no personal-data guard and no JSON envelope, so the ratio is the cost of our
layer. Figures go to ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sync.outbox import NewEvent, Outbox
from sync.store import open_store

DATA = {"door": "room-a", "reason": "check-in", "seconds": 5, "ref": "cr1_mfrggzdfmztwq2lk"}
RAW_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL,
    at TEXT NOT NULL, clock_trusted INTEGER NOT NULL, data TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL DEFAULT 0
)
"""
RAW_INSERT = "INSERT INTO outbox (id, type, at, clock_trusted, data) VALUES (?, ?, ?, ?, ?)"


def raw_connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(RAW_SCHEMA)
    return conn


def raw_row() -> tuple[str, str, str, int, str]:
    return (
        str(uuid.uuid4()),
        "door.unlocked",
        "2026-11-28T10:00:00.000+09:00",
        1,
        json.dumps(DATA),
    )


def raw_single(path: Path, count: int) -> None:
    conn = raw_connect(path)
    for _ in range(count):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(RAW_INSERT, raw_row())
        conn.execute("COMMIT")
    conn.close()


def raw_batched(path: Path, count: int, batch: int = 100) -> None:
    conn = raw_connect(path)
    for _ in range(count // batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(RAW_INSERT, [raw_row() for _ in range(batch)])
        conn.execute("COMMIT")
    conn.close()


def ours_single(path: Path, count: int) -> None:
    with open_store(path, busy_timeout=60) as store:
        outbox = Outbox(store)
        for _ in range(count):
            outbox.append("door.unlocked", DATA)


def ours_batched(path: Path, count: int, batch: int = 100) -> None:
    with open_store(path, busy_timeout=60) as store:
        outbox = Outbox(store)
        for _ in range(count // batch):
            outbox.append_many([NewEvent("door.unlocked", DATA)] * batch)


def timed(fn: Callable[[Path, int], None], path: Path, count: int) -> float:
    start = time.perf_counter()
    fn(path, count)
    return count / (time.perf_counter() - start)


def concurrent(fn: Callable[[Path, int], None], path: Path, count: int, writers: int) -> float:
    ctx = mp.get_context("fork")
    # Create the schema first so the measurement is appends, not migrations.
    fn(path, 0)
    procs = [ctx.Process(target=fn, args=(path, count)) for _ in range(writers)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"writer failed with exit code {p.exitcode}")
    return count * writers / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="events per measurement/writer")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        base = Path(tmp)
        cases: list[tuple[str, Callable[[], float], Callable[[], float]]] = [
            ("one event per commit",
             lambda: timed(ours_single, base / "o1.db", args.events),
             lambda: timed(raw_single, base / "r1.db", args.events)),
            ("batches of 100 per commit",
             lambda: timed(ours_batched, base / "o2.db", args.events * 10),
             lambda: timed(raw_batched, base / "r2.db", args.events * 10)),
            (f"{args.writers} concurrent writers, one per commit",
             lambda: concurrent(ours_single, base / "o3.db", args.events // 2, args.writers),
             lambda: concurrent(raw_single, base / "r3.db", args.events // 2, args.writers)),
        ]  # fmt: skip
        for name, ours, raw in cases:
            raw_rate, ours_rate = raw(), ours()
            results[name] = {"ours": ours_rate, "raw": raw_rate, "ratio": ours_rate / raw_rate}
    machine = f"{platform.machine()}, {mp.cpu_count()} cores, Python {platform.python_version()}"
    if args.json:
        print(json.dumps({"machine": machine, "results": results}, indent=2))
        return 0
    print(f"outbox append rate (events/s), durable (WAL, synchronous=FULL); {machine}")
    print(f"{'case':<42} {'ours':>10} {'raw sqlite3':>12} {'ours/raw':>9}")
    for name, row in results.items():
        print(f"{name:<42} {row['ours']:>10.0f} {row['raw']:>12.0f} {row['ratio']:>8.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
