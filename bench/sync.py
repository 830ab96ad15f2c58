"""Device reservation cache benchmark: ``python bench/sync.py``.

Every figure is compared with a raw baseline measured in the same run, on the
same machine (the outbox drain and the agent's memory are in
``bench/drain.py``):

1. **Snapshot apply** of 100,000 reservations (the agent's path for each
   chunk payload: validate it whole, stage its rows; then the atomic swap).
   Baseline: a raw ``executemany`` of the same rows into bare tables.
   Target: at most 1 s; the run fails when it is missed.
2. **Lookup** by credential reference at a door and time in that cache.
   Baseline: the same SQL on a raw sqlite3 connection. Target: at most 1 ms.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from central.reservations.chunks import encoded_reservations, payload_budget, snapshot_payloads
from contracts import mqtt as protocol
from contracts.mqtt import Reservation
from sync.reservations import ReservationCache, ReservationSync
from sync.snapshot_rows import decode_answer
from sync.store import open_store


def reservations(count: int) -> list[Reservation]:
    base = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    return [
        Reservation(
            id=f"res-{n:07d}",
            facility="fac-1",
            door=f"room-{n % 20}",
            starts_at=base + timedelta(hours=n % 500),
            ends_at=base + timedelta(hours=n % 500 + 2),
            credential_refs=[f"cred-{n:07d}", f"cred-group-{n % 1000}"],
        )
        for n in range(count)
    ]


def snapshot_bench(root: Path, count: int) -> dict[str, float]:
    items = reservations(count)
    # Central's packing (central.reservations.store.snapshot without the
    # database read): encode each reservation once, cut by bytes and count.
    start = time.perf_counter()
    budget = payload_budget(protocol.MAX_PACKET_BYTES)
    encoded = encoded_reservations(items)
    chunks = snapshot_payloads("fac-1", 42, "bench", encoded, budget=budget, max_count=1000)
    pack_s = time.perf_counter() - start
    with open_store(root / "snap.db") as store:
        cache = ReservationCache(store, "fac-1")
        # The agent's path for each payload on the device's reservations
        # topic (sync.agent.Agent._handle_answer): validate the chunk whole,
        # stage its rows; the last chunk swaps the snapshot in.
        sync = ReservationSync(cache)
        start = time.perf_counter()
        outcomes = [sync.on_answer(decode_answer(payload)) for payload in chunks[:-1]]
        decoded = time.perf_counter()
        outcomes.append(sync.on_answer(decode_answer(chunks[-1])))
        ours = time.perf_counter() - start
        decode_s = decoded - start
        assert outcomes[-1] == "applied" and not any(outcomes[:-1]), outcomes[-3:]
        assert cache.count() == count

        raw_path = root / "raw.db"
        raw = sqlite3.connect(raw_path, isolation_level=None)
        raw.executescript(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
            "CREATE TABLE r (id TEXT PRIMARY KEY, door TEXT, s INTEGER, e INTEGER);"
            "CREATE TABLE c (rid TEXT, ref TEXT, PRIMARY KEY (ref, rid)) WITHOUT ROWID;"
        )
        rows = [
            (r.id, r.door, int(r.starts_at.timestamp()), int(r.ends_at.timestamp())) for r in items
        ]
        refs = [(r.id, ref) for r in items for ref in r.credential_refs]
        start = time.perf_counter()
        raw.execute("BEGIN")
        raw.executemany("INSERT INTO r VALUES (?,?,?,?)", rows)
        raw.executemany("INSERT INTO c VALUES (?,?)", refs)
        raw.execute("COMMIT")
        raw_s = time.perf_counter() - start

        rng = random.Random(1)
        picks = [items[rng.randrange(count)] for _ in range(5000)]
        times = []
        for r in picks:
            at = r.starts_at.timestamp() + 60
            t0 = time.perf_counter()
            found = cache.lookup(r.credential_refs[0], r.door, at)
            times.append(time.perf_counter() - t0)
            assert found and found[0].id == r.id
        raw_times = []
        sql = (
            "SELECT r.id FROM c JOIN r ON r.id = c.rid WHERE c.ref = ? AND r.door = ?"
            " AND r.s <= ? AND r.e > ?"
        )
        for r in picks:
            at = r.starts_at.timestamp() + 60
            t0 = time.perf_counter()
            raw.execute(sql, (r.credential_refs[0], r.door, at, at)).fetchall()
            raw_times.append(time.perf_counter() - t0)
        raw.close()
    times.sort()
    raw_times.sort()
    return {
        "snapshot_s": ours,
        "pack_s": pack_s,
        "chunks": len(chunks),
        "decode_s": decode_s,
        "raw_insert_s": raw_s,
        "lookup_mean_ms": statistics.mean(times) * 1000,
        "lookup_p99_ms": times[int(len(times) * 0.99)] * 1000,
        "raw_lookup_mean_ms": statistics.mean(raw_times) * 1000,
    }


SNAPSHOT_TARGET_S = 1.0


def report_snapshot(snap: dict[str, float]) -> int:
    """Print the snapshot and lookup figures; 1 when the snapshot target is missed."""
    total = snap["snapshot_s"]
    print(
        f"snapshot of 100,000 reservations: {total:.2f} s in all"
        f" (validate + stage the {snap['chunks']:.0f} chunks as they arrive"
        f" {snap['decode_s']:.2f} s, last chunk and atomic swap {total - snap['decode_s']:.2f} s);"
        f" raw executemany of the rows {snap['raw_insert_s']:.2f} s: ours / raw"
        f" {total / snap['raw_insert_s']:.2f}x; central packed the chunks in {snap['pack_s']:.2f} s"
    )
    met = total <= SNAPSHOT_TARGET_S
    print(f"  target <= {SNAPSHOT_TARGET_S:.0f} s: " + ("met" if met else "MISSED"))
    print(
        f"lookup by credential/door/time: mean {snap['lookup_mean_ms']:.3f} ms,"
        f" p99 {snap['lookup_p99_ms']:.3f} ms (target <= 1 ms);"
        f" raw sqlite3 mean {snap['raw_lookup_mean_ms']:.3f} ms"
    )
    return 0 if met else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        return report_snapshot(snapshot_bench(Path(tmp), 100_000))


if __name__ == "__main__":
    sys.exit(main())
