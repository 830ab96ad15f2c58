"""Central ingest against a plain durable insert of the same rows.

``.venv/bin/python -m bench.ingest`` (20,000 events in batches of 100, about
two minutes; ``--events N``, ``--batch N``, ``--workers 1,2,4``).

Starts its own mosquitto (mutual TLS, the fleet ACL, as in production) and
its own PostgreSQL 15 (``initdb``, **fsync on**). For 1, 2 and 4 workers, on
a fresh database each time:

* raw baseline: as many processes as workers, each inserting its share of the
  same event rows into the same ``events`` table (same indexes) with a plain
  psycopg ``executemany`` INSERT, committing every ``ingest.commit_batch``
  messages (the largest transaction a worker makes); no MQTT, no checks;
* ours: that many ``python -m central ingest`` processes on the shared
  subscription (``$share/central/...``); a QoS 1 publisher sends the device
  batches; timed from the first publish until every event is committed.

Target: ours >= 50 % of raw for every worker count (exit status 1 if not).
Where the time goes: each worker's own timers (decode + validate, the
events' transaction, acks; logged when it stops), and an in-process replay of
the same load that splits the transaction into content checks and database.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import ssl
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from central.config import IngestSection  # noqa: E402
from central.db.engine import Database, utc  # noqa: E402
from central.db.tables import events  # noqa: E402
from central.ingest import store as ingest_store  # noqa: E402
from central.ingest.parse import parse_inbound  # noqa: E402
from contracts.mqtt import EventBatch, device_topic, encode  # noqa: E402
from tests.harness.central import central_process, write_config  # noqa: E402
from tests.harness.mosquitto import ClientIdentity, Mosquitto  # noqa: E402
from tests.harness.postgres import Postgres  # noqa: E402
from tests.harness.services import ServiceProcess, wait_until  # noqa: E402

DEVICES = [f"dev-{i}" for i in range(8)]
TARGET = 0.5
COMMIT_BATCH = IngestSection().commit_batch
RAW_INSERT = (
    "INSERT INTO events (event_id, device, seq, type, at, clock_trusted, data, received_at,"
    " worker) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
Load = list[tuple[str, bytes]]


def client(broker: Mosquitto, ident: ClientIdentity, client_id: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.tls_set(ca_certs=str(ident.ca), certfile=str(ident.cert), keyfile=str(ident.key),
              tls_version=ssl.PROTOCOL_TLS_CLIENT)  # fmt: skip
    c.max_inflight_messages_set(100)
    c.connect("localhost", broker.tls_port)
    c.loop_start()
    return c


def payloads(total: int, batch: int) -> Load:
    """Device batches as devices send them, round robin over 8 devices."""
    out = []
    seq = dict.fromkeys(DEVICES, 0)
    now = datetime.now(UTC)
    for i in range(total // batch):
        device = DEVICES[i % len(DEVICES)]
        evs = []
        for _ in range(batch):
            seq[device] += 1
            evs.append({"id": str(uuid.uuid4()), "seq": seq[device], "type": "door.opened",
                        "at": now, "clock_trusted": True,
                        "data": {"door": "room-a", "result": "granted"}})  # fmt: skip
        body = EventBatch.model_validate({"device": device, "events": evs})
        out.append((device_topic(device, "events"), encode(body)))
    return out


# raw baseline --------------------------------------------------------------------


def raw_rows(load: Load) -> list[list[tuple[Any, ...]]]:
    """The rows ingest writes, one list per message (prepared before timing)."""
    received = utc(datetime.now(UTC))
    out = []
    for topic, payload in load:
        batch = parse_inbound(topic, payload).message
        assert isinstance(batch, EventBatch)
        out.append([(e.id, batch.device, e.seq, e.type, utc(e.at), e.clock_trusted, e.data,
                     received, "raw") for e in batch.events])  # fmt: skip
    return out


def _raw_worker(dsn: str, messages: list[list[tuple[Any, ...]]], go: Any) -> None:
    import psycopg
    from psycopg.types.json import Jsonb

    with psycopg.connect(dsn) as conn:
        go.wait()
        for i in range(0, len(messages), COMMIT_BATCH):
            with conn.cursor() as cur:
                for rows in messages[i : i + COMMIT_BATCH]:
                    cur.executemany(RAW_INSERT, [(*r[:6], Jsonb(r[6]), *r[7:]) for r in rows])
            conn.commit()


def raw_rate(db_url: str, rows: list[list[tuple[Any, ...]]], workers: int) -> float:
    """Events/s of ``workers`` processes inserting their share of ``rows``."""
    Database(db_url).close()  # the schema, as central creates it
    dsn = db_url.replace("postgresql+psycopg://", "postgresql://", 1)
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    procs = [ctx.Process(target=_raw_worker, args=(dsn, rows[w::workers], go))
             for w in range(workers)]  # fmt: skip
    for p in procs:
        p.start()
    time.sleep(1.0)  # connected and waiting
    start = time.perf_counter()
    go.set()
    for p in procs:
        p.join(300)
        if p.exitcode != 0:
            raise RuntimeError(f"raw insert process failed ({p.exitcode})")
    elapsed = time.perf_counter() - start
    with Database(db_url) as db:
        assert count_rows(db) == sum(map(len, rows)), "raw insert lost rows"
    return sum(map(len, rows)) / elapsed


# ours -------------------------------------------------------------------------------


def publish_all(broker: Mosquitto, load: Load) -> None:
    pub = client(broker, broker.identity("central"), f"bench-pub-{uuid.uuid4().hex[:6]}")
    infos = [pub.publish(topic, payload, qos=1) for topic, payload in load]
    for info in infos:
        info.wait_for_publish(60)
    pub.disconnect()
    pub.loop_stop()


def count_rows(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(events)).scalar_one())


def worker_counts(proc: ServiceProcess) -> Counter[str]:
    """The counters a worker logs when it stops (timers included)."""
    for line in reversed(proc.log_tail(200).splitlines()):
        if "ingest worker stopped" in line:
            return Counter(json.loads(line[line.index("{") :]).get("counts", {}))
    raise RuntimeError(f"{proc.name}: no 'ingest worker stopped' line in its log")


def ingest_rate(
    broker: Mosquitto, db_url: str, workers: int, load: Load, folder: Path
) -> tuple[float, float, Counter[str]]:
    """Events/s of ``workers`` ingest processes; wall seconds; their summed counters."""
    procs: list[ServiceProcess] = []
    for i in range(workers):
        config = write_config(folder, broker, db_url, worker_id=f"w{i}",
                              extra='[logging]\nlevel = "INFO"\n')  # fmt: skip
        log = folder / f"{uuid.uuid4().hex[:8]}-w{i}.log"  # fresh: readiness is read from it
        proc = central_process(f"w{i}", ["ingest", "--config", str(config)], log)
        proc.start()
        procs.append(proc)
    total = sum(len(json.loads(p)["events"]) for _, p in load)
    try:
        wait_until(lambda: all(p.check_alive() and '"subscribed"' in p.log_tail(100)
                               for p in procs), 120, "workers to subscribe")  # fmt: skip
        with Database(db_url) as db:
            start = time.perf_counter()
            publish_all(broker, load)
            wait_until(lambda: count_rows(db) >= total, 300, "every event stored", 0.05)
            elapsed = time.perf_counter() - start
    finally:
        for p in procs:
            p.stop()
    counts: Counter[str] = Counter()
    for p in procs:
        counts.update(worker_counts(p))
    return total / elapsed, elapsed, counts


def in_process_split(db_url: str, load: Load) -> dict[str, float]:
    """Microseconds per event of each step, replayed in this process."""
    total = sum(len(json.loads(p)["events"]) for _, p in load)
    t0 = time.perf_counter()
    batches = [parse_inbound(topic, payload).message for topic, payload in load]
    t1 = time.perf_counter()
    for batch in batches:
        assert isinstance(batch, EventBatch)
        for ev in batch.events:
            ingest_store.refusal(ev)
    t2 = time.perf_counter()
    with Database(db_url) as db:
        store = ingest_store.IngestStore(db, "bench")
        t3 = time.perf_counter()
        for i in range(0, len(batches), COMMIT_BATCH):
            store.store_batches(batches[i : i + COMMIT_BATCH])  # type: ignore[arg-type]
        t4 = time.perf_counter()
    per = 1e6 / total
    checks = (t2 - t1) * per
    return {"parse": (t1 - t0) * per, "checks": checks, "db": (t4 - t3) * per - checks}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100, help="events per MQTT message")
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    broker = Mosquitto(folder / "mosquitto", devices=dict.fromkeys(DEVICES, "fac-1"))
    broker.start()
    pg = Postgres(fsync=True).start()
    missed = []
    try:
        load = payloads(args.events, args.batch)
        rows = raw_rows(load)
        print(f"central ingest on PostgreSQL (fsync on): {args.events} events in batches of"
              f" {args.batch}, TLS, QoS 1; raw commits every {COMMIT_BATCH} messages")  # fmt: skip
        print(f"{'workers':<9}{'ours ev/s':>10}{'raw ev/s':>10}{'ours/raw':>9}  where a"
              " worker's time goes, µs per event (msgs per transaction)")  # fmt: skip
        for workers in counts:
            raw = raw_rate(pg.create_database(), rows, workers)
            ours, wall, c = ingest_rate(broker, pg.create_database(), workers, load, folder)
            n = max(1, c["events_stored"])
            parse, stored, ack = (c[k] / n for k in ("us_parse", "us_store", "us_ack"))
            other = wall * workers * 1e6 / n - parse - stored - ack
            per_txn = c["received"] / max(1, c["transactions"])
            print(f"{workers:<9}{ours:>10.0f}{raw:>10.0f}{ours / raw:>9.0%}  parse+validate"
                  f" {parse:.1f}, transaction {stored:.1f}, acks {ack:.1f}, waiting/MQTT"
                  f" {other:.1f} ({per_txn:.0f})", flush=True)  # fmt: skip
            if ours / raw < TARGET:
                missed.append(f"{workers} worker(s): {ours / raw:.0%} < {TARGET:.0%}")
        split = in_process_split(pg.create_database(), load)
        print(f"in-process replay, µs per event: decode+validate {split['parse']:.1f},"
              f" content checks {split['checks']:.1f}, database {split['db']:.1f}"
              f" (transactions of {COMMIT_BATCH} messages)")  # fmt: skip
    finally:
        pg.stop()
        broker.stop()
        shutil.rmtree(folder, ignore_errors=True)
    for line in missed:
        print(f"TARGET MISSED: {line}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
