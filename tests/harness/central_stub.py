"""A minimal, test-only central responder for device sync tests.

Subscribes as identity ``central`` through the shared subscription, commits
each event batch to a SQLite file keyed by event id (``INSERT OR IGNORE``:
idempotent), and only then publishes the :class:`~contracts.mqtt.Ack`. The
real central ingest replaces it; this stub exists so the device agent can be
tested end to end against a real broker.

``--die-after-commits N`` SIGKILLs the process right after its N-th commit,
before the ack: the "central crashed between commit and ack" case.

Run: ``python -m tests.harness.central_stub --port P --ca CA --cert C --key K --db DB --ready F``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import ssl
import sys
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from contracts import mqtt as protocol
from contracts.mqtt import Ack, EventBatch, ProtocolError

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY, device TEXT NOT NULL, seq INTEGER NOT NULL,
    type TEXT NOT NULL, at TEXT NOT NULL, data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (n INTEGER NOT NULL);
INSERT INTO deliveries SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM deliveries);
"""


def open_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMA)
    return conn


class Responder:
    def __init__(self, db: sqlite3.Connection, die_after: int | None) -> None:
        self.db = db
        self.die_after = die_after
        self.commits = 0
        self.rejected = 0

    def handle(self, client: mqtt.Client, topic: str, payload: bytes) -> None:
        try:
            device, _ = protocol.parse_device_topic(topic)
            batch = protocol.decode(EventBatch, payload)
            if batch.device != device:
                raise ProtocolError(f"batch for {batch.device} on {device}'s topic")
        except ProtocolError as exc:
            self.rejected += 1
            print(f"rejected: {exc}", file=sys.stderr, flush=True)
            return
        self.db.execute("BEGIN IMMEDIATE")
        self.db.executemany(
            "INSERT OR IGNORE INTO events (id, device, seq, type, at, data) VALUES (?,?,?,?,?,?)",
            [(e.id, device, e.seq, e.type, e.at.isoformat(), str(e.data)) for e in batch.events],
        )
        self.db.execute("UPDATE deliveries SET n = n + ?", (len(batch.events),))
        self.db.execute("COMMIT")
        self.commits += 1
        if self.die_after is not None and self.commits >= self.die_after:
            os.kill(os.getpid(), signal.SIGKILL)
        ack = Ack(ids=[e.id for e in batch.events])
        client.publish(protocol.device_topic(device, "acks"), protocol.encode(ack), qos=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--ready", type=Path, required=True)
    parser.add_argument("--die-after-commits", type=int)
    args = parser.parse_args()

    responder = Responder(open_db(args.db), args.die_after_commits)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.tls_set(
        ca_certs=args.ca, certfile=args.cert, keyfile=args.key, tls_version=ssl.PROTOCOL_TLS_CLIENT
    )
    client.reconnect_delay_set(1, 1)

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        if not rc.is_failure:
            c.subscribe(protocol.SHARED_EVENTS_SUBSCRIPTION, qos=1)

    def on_subscribe(_c: Any, _u: Any, _m: int, _rc: list[ReasonCode], _p: Any) -> None:
        args.ready.write_text("ready\n")

    def on_message(c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        responder.handle(c, message.topic, bytes(message.payload))

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    client.connect(args.host, args.port, keepalive=5)
    client.loop_start()
    stop.wait()
    client.disconnect()
    client.loop_stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
