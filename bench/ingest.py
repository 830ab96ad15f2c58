"""Central ingest throughput against the broker's own delivery rate.

Runs its own mosquitto (mutual TLS, as in production) and its own PostgreSQL
(initdb, fsync on), then for each case publishes the same load of event
batches (QoS 1, as devices do) on ``devices/{d}/events`` and measures:

* raw: a plain paho subscriber on the same shared subscription that only
  counts messages (the broker's delivery rate, the baseline);
* ours: 1 and 2 ``python -m central ingest`` processes on SQLite and on
  PostgreSQL, until every event is committed (time to the last row).

Run: ``.venv/bin/python bench/ingest.py`` (20,000 events, < 2 min);
``--full`` for 200,000 events.
"""

from __future__ import annotations

import argparse
import shutil
import ssl
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from central.db.engine import Database  # noqa: E402
from central.db.tables import events  # noqa: E402
from contracts.mqtt import SHARED_EVENTS_SUBSCRIPTION, EventBatch, device_topic, encode  # noqa: E402
from tests.harness.central import central_process, write_config  # noqa: E402
from tests.harness.mosquitto import ClientIdentity, Mosquitto  # noqa: E402
from tests.harness.postgres import Postgres  # noqa: E402
from tests.harness.services import ServiceProcess, wait_until  # noqa: E402

DEVICES = [f"dev-{i}" for i in range(8)]


def client(broker: Mosquitto, ident: ClientIdentity, client_id: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.tls_set(ca_certs=str(ident.ca), certfile=str(ident.cert), keyfile=str(ident.key),
              tls_version=ssl.PROTOCOL_TLS_CLIENT)  # fmt: skip
    c.max_inflight_messages_set(100)
    c.connect("localhost", broker.tls_port)
    c.loop_start()
    return c


def payloads(total: int, batch: int) -> list[tuple[str, bytes]]:
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


def publish_all(broker: Mosquitto, load: list[tuple[str, bytes]]) -> None:
    pub = client(broker, broker.identity("central"), f"bench-pub-{uuid.uuid4().hex[:6]}")
    infos = [pub.publish(topic, payload, qos=1) for topic, payload in load]
    for info in infos:
        info.wait_for_publish(60)
    pub.disconnect()
    pub.loop_stop()


def raw_rate(broker: Mosquitto, load: list[tuple[str, bytes]], batch: int) -> float:
    got = threading.Event()
    count = [0]

    def on_message(_c: Any, _u: Any, _m: mqtt.MQTTMessage) -> None:
        count[0] += 1
        if count[0] == len(load):
            got.set()

    subscribed = threading.Event()
    sub = client(broker, broker.identity("central"), "bench-raw")
    sub.on_message = on_message
    sub.on_subscribe = lambda *_a: subscribed.set()
    sub.subscribe(SHARED_EVENTS_SUBSCRIPTION, qos=1)
    subscribed.wait(10)
    start = time.perf_counter()
    publish_all(broker, load)
    got.wait(300)
    elapsed = time.perf_counter() - start
    sub.disconnect()
    sub.loop_stop()
    return len(load) * batch / elapsed


def count_rows(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(events)).scalar_one())


def ingest_rate(
    broker: Mosquitto, db_url: str, workers: int, load: list[tuple[str, bytes]], *,
    batch: int, folder: Path,
) -> float:  # fmt: skip
    procs: list[ServiceProcess] = []
    for i in range(workers):
        config = write_config(folder, broker, db_url, worker_id=f"w{i}",
                              extra='[logging]\nlevel = "INFO"\n')  # fmt: skip
        log = folder / f"{uuid.uuid4().hex[:8]}-w{i}.log"  # fresh: readiness is read from it
        proc = central_process(f"w{i}", ["ingest", "--config", str(config)], log)
        proc.start()
        procs.append(proc)
    try:
        wait_until(lambda: all(p.check_alive() and '"subscribed"' in p.log_tail(100)
                               for p in procs), 30, "workers to subscribe")  # fmt: skip
        with Database(db_url) as db:
            before = count_rows(db)
            start = time.perf_counter()
            publish_all(broker, load)
            expected = before + len(load) * batch
            wait_until(lambda: count_rows(db) >= expected, 180, "every event stored", 0.05)
            elapsed = time.perf_counter() - start
    finally:
        for p in procs:
            p.stop()
    return len(load) * batch / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100, help="events per MQTT message")
    parser.add_argument("--full", action="store_true", help="200,000 events")
    args = parser.parse_args()
    total = 200_000 if args.full else args.events
    folder = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    broker = Mosquitto(folder / "mosquitto", devices=dict.fromkeys(DEVICES, "fac-1"))
    broker.start()
    pg = Postgres(fsync=True).start()
    try:
        print(f"central ingest: {total} events in batches of {args.batch}, TLS, QoS 1")
        print(f"{'case':<28}{'events/s':>12}{'raw events/s':>15}{'ours/raw':>10}")
        for backend in ("sqlite", "postgresql"):
            for workers in (1, 2):
                load = payloads(total, args.batch)
                raw = raw_rate(broker, payloads(total, args.batch), args.batch)
                url = (f"sqlite:///{folder}/{backend}-{workers}.db" if backend == "sqlite"
                       else pg.create_database())  # fmt: skip
                ours = ingest_rate(broker, url, workers, load, batch=args.batch, folder=folder)
                case = f"{backend}, {workers} worker{'s' if workers > 1 else ''}"
                print(f"{case:<28}{ours:>12.0f}{raw:>15.0f}{ours / raw:>10.0%}", flush=True)
    finally:
        pg.stop()
        broker.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
