"""Outbox drain by the real sync agent against central's real ingest.

``.venv/bin/python -m bench.drain`` (20,000 events, about two minutes;
``--events N``; ``--grid`` tries other batch sizes and windows; ``--full``
adds the memory figure with 1,000,000 events queued).

Everything is real: a mosquitto with mutual TLS and the fleet ACL, a
PostgreSQL 15 (``initdb``, **fsync on**), one ``python -m central ingest``
worker on it (validation, checks, idempotent insert, seq tracking, the Ack
after the commit), and the agent (``python -m sync run``) with the
production ``[sync]`` defaults on a filled device outbox. Each case runs on
three links between the device and the broker: loopback, a mobile link
emulated by a TCP relay in its own process (``--rtt-ms``, default 100 ms round
trip, and ``--uplink-kbit``, default 2,000 kbit/s device -> broker), and a
good LTE link (50 ms, 10,000 kbit/s).

Raw baseline, same run, same link, same consumer: a plain paho client with
the device's identity publishes the SAME batches (the agent's own payload
bytes, built from the same outbox: same events, same batch cuts) at QoS 1,
keeps the same number of batches awaiting central's Ack, and does nothing
else (no outbox read, no delete on ack). Both are timed from central's first
Ack to its last, so connection set-up is left out of both. The ratio is the
agent's own cost: reading the outbox, encoding, its window, deleting
acknowledged events durably.

Target: the agent >= 80 % of raw at the defaults on every link (exit status
1 if not). ``--full`` adds the agent's RSS while it drains 1,000,000 queued
events (flat, <= 100 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import sqlite3
import ssl
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contracts import mqtt as protocol  # noqa: E402
from sync.batches import MAX_BATCH_BYTES, encode_batch, split_batches  # noqa: E402
from sync.config import SyncSection  # noqa: E402
from sync.outbox import NewEvent, Outbox  # noqa: E402
from sync.store import open_store  # noqa: E402
from tests.harness.central import central_process, write_config  # noqa: E402
from tests.harness.mosquitto import Mosquitto  # noqa: E402
from tests.harness.postgres import Postgres  # noqa: E402
from tests.harness.services import ServiceProcess, free_port, wait_until  # noqa: E402
from tests.harness.syncdev import agent_process, write_device_config  # noqa: E402

DEVICE = "dev-a"
TARGET = 0.8
DEFAULTS = SyncSection()


@dataclass(frozen=True)
class Link:
    name: str
    rtt_ms: float = 0
    uplink_kbit: float = 0  # 0: unlimited


# A good LTE uplink: half the round trip, five times the uplink of the default
# mobile link (where a small window, not the link, would limit the drain).
GOOD_MOBILE = Link("lte", 50, 10_000)


# the emulated link ---------------------------------------------------------------


def _relay_main(listen: int, target: int, link: Link, ready: Any) -> None:
    """A TCP relay adding half the RTT each way and capping the uplink."""
    delay = link.rtt_ms / 2000

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: bool) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def send() -> None:
            free_at = 0.0
            while True:
                due, data = await queue.get()
                if not data:
                    writer.close()
                    return
                now = loop.time()
                if up and link.uplink_kbit:
                    free_at = max(free_at, now) + len(data) * 8 / (link.uplink_kbit * 1000)
                    due = max(due, free_at)
                if due > now:
                    await asyncio.sleep(due - now)
                writer.write(data)
                await writer.drain()

        sender = asyncio.ensure_future(send())
        while True:
            data = await reader.read(65536)
            await queue.put((loop.time() + delay, data))
            if not data:
                break
        await sender

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False),
                             return_exceptions=True)  # fmt: skip

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", listen)
        ready.set()
        async with server:
            await server.serve_forever()

    loop = asyncio.new_event_loop()
    loop.run_until_complete(serve())


class Relay:
    def __init__(self, target: int, link: Link) -> None:
        self.port = free_port()
        ctx = multiprocessing.get_context("spawn")
        ready = ctx.Event()
        self.process = ctx.Process(target=_relay_main, args=(self.port, target, link, ready),
                                   daemon=True)  # fmt: skip
        self.process.start()
        if not ready.wait(120):  # spawn imports this module: slow on a loaded machine
            self.stop()
            raise RuntimeError("link relay did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(10)


# the device's outbox -------------------------------------------------------------


def fill(db: Path, count: int) -> None:
    with open_store(db) as store:
        outbox = Outbox(store, clock_trusted=lambda: True)
        for start in range(0, count, 10_000):
            outbox.append_many(
                NewEvent("door.unlocked", {"door": "room-a", "result": "granted", "n": i})
                for i in range(start, min(count, start + 10_000))
            )


def agent_payloads(db: Path, batch_size: int) -> list[tuple[list[str], bytes]]:
    """The agent's batches for this outbox, cut as the agent cuts them (a page
    of ``batch_size``, split only when over MAX_BATCH_BYTES): (event ids,
    payload bytes) each."""
    out = []
    with open_store(db) as store:
        outbox, cursor = Outbox(store), 0
        while events := outbox.pending(limit=batch_size, after_seq=cursor):
            cursor = events[-1].seq
            whole = encode_batch(DEVICE, events)
            if len(whole) <= MAX_BATCH_BYTES:
                out.append(([e.id for e in events], whole))
                continue
            for batch in split_batches(events):
                out.append(([e.id for e in batch], encode_batch(DEVICE, batch)))
    return out


def depth(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])


# the two publishers --------------------------------------------------------------


def raw_drain(broker: Mosquitto, port: int, batches: list[tuple[list[str], bytes]],
              window: int) -> float:  # fmt: skip
    """Events/s of a plain paho client: same payloads, same window of batches
    awaiting central's Ack, timed from the first Ack to the last."""
    ident = broker.identity(DEVICE)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{DEVICE}-raw",
                         protocol=mqtt.MQTTv5)  # fmt: skip
    client.tls_set(ca_certs=str(ident.ca), certfile=str(ident.cert), keyfile=str(ident.key),
                   tls_version=ssl.PROTOCOL_TLS_CLIENT)  # fmt: skip
    client.max_inflight_messages_set(max(20, window + 4))  # as the agent
    total = sum(len(ids) for ids, _ in batches)
    owner = {i: n for n, (ids, _) in enumerate(batches) for i in ids}
    remaining = [len(ids) for ids, _ in batches]
    slots = threading.Semaphore(window)
    done, subscribed = threading.Event(), threading.Event()
    state = {"acked": 0, "first_at": 0.0, "first_count": 0, "last_at": 0.0}

    def on_message(_c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        ack = protocol.decode(protocol.Ack, bytes(message.payload))
        now = time.perf_counter()
        if not state["first_at"]:
            state["first_at"], state["first_count"] = now, len(ack.ids)
        for event_id in ack.ids:
            n = owner.pop(event_id, None)
            if n is not None:
                state["acked"] += 1
                remaining[n] -= 1
                if remaining[n] == 0:
                    slots.release()
        if state["acked"] == total:
            state["last_at"] = now
            done.set()

    client.on_message = on_message
    client.on_subscribe = lambda *_a: subscribed.set()
    client.connect("localhost", port)
    client.loop_start()
    client.subscribe(protocol.device_topic(DEVICE, "acks"), qos=1)
    if not subscribed.wait(20):
        raise RuntimeError("raw client: no SUBACK")
    topic = protocol.device_topic(DEVICE, "events")
    for _, payload in batches:
        slots.acquire()
        client.publish(topic, payload, qos=1)
    if not done.wait(600):
        raise RuntimeError("raw client: acks missing")
    client.disconnect()
    client.loop_stop()
    return (total - state["first_count"]) / (state["last_at"] - state["first_at"])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def agent_drain(broker: Mosquitto, port: int, folder: Path, total: int,
                sample_for: float = 0, **sync: float) -> tuple[float, list[float]]:  # fmt: skip
    """Events/s of the agent, from central's first Ack (the outbox shrinks)
    until it is empty; RSS samples (MB) for the first ``sample_for`` s."""
    config = write_device_config(broker, folder, DEVICE, "fac-1", **sync)
    text = config.read_text().replace(f"port = {broker.tls_port}", f"port = {port}")
    config.write_text(text)
    db = folder / "device.db"
    agent = agent_process(config, folder / "agent.log")
    samples: list[float] = []
    agent.start()
    try:
        wait_until(lambda: depth(db) < total, 120, "central's first ack", 0.005)
        start, first = time.perf_counter(), depth(db)
        while (left := depth(db)) > 0:
            if time.perf_counter() - start < sample_for:
                samples.append(rss_mb(agent.pid))
                if time.perf_counter() - start > sample_for - 0.2:
                    return (first - left) / (time.perf_counter() - start), samples
            time.sleep(0.01 if not sample_for else 0.2)
            if time.perf_counter() - start > 3600:
                raise RuntimeError("drain did not finish within an hour")
        return first / (time.perf_counter() - start), samples
    finally:
        agent.stop()


# one case ------------------------------------------------------------------------


class Central:
    """One real ingest worker on a fresh PostgreSQL database."""

    def __init__(self, broker: Mosquitto, pg: Postgres, folder: Path) -> None:
        url = pg.create_database()
        config = write_config(folder, broker, url, worker_id="w0",
                              extra='[logging]\nlevel = "INFO"\n')  # fmt: skip
        log = folder / f"ingest-{uuid.uuid4().hex[:6]}.log"
        self.process: ServiceProcess = central_process("ingest", ["ingest", "--config",
                                                                  str(config)], log)  # fmt: skip
        self.process.start()
        proc = self.process
        try:  # a loaded machine (other test suites) can take a while
            wait_until(lambda: proc.check_alive() and '"subscribed"' in proc.log_tail(50), 120,
                       "the ingest worker to subscribe")  # fmt: skip
        except BaseException:
            proc.stop()
            raise

    def stop(self) -> None:
        self.process.stop()


def case(broker: Mosquitto, pg: Postgres, root: Path, link: Link, *, total: int,
         batch_size: int, window: int) -> tuple[float, float]:  # fmt: skip
    """(agent events/s, raw events/s) for one link and [sync] setting."""
    folder = root / f"{link.name}-{batch_size}-{window}-{uuid.uuid4().hex[:4]}"
    folder.mkdir(parents=True)
    fill(folder / "device.db", total)
    batches = agent_payloads(folder / "device.db", batch_size)
    relay = Relay(broker.tls_port, link) if link.rtt_ms or link.uplink_kbit else None
    port = relay.port if relay else broker.tls_port
    try:
        central = Central(broker, pg, folder)
        try:
            raw = raw_drain(broker, port, batches, window)
        finally:
            central.stop()
        central = Central(broker, pg, folder)
        try:
            ours, _ = agent_drain(broker, port, folder, total, **_sync(batch_size, window))
        finally:
            central.stop()
    finally:
        if relay:
            relay.stop()
    return ours, raw


def _sync(batch_size: int, window: int) -> dict[str, float]:
    """The production [sync] values, with the two under test."""
    values = DEFAULTS.model_dump()
    values.update(batch_size=batch_size, max_inflight_batches=window)
    return values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rtt-ms", type=float, default=100)
    parser.add_argument("--uplink-kbit", type=float, default=2000)
    parser.add_argument("--links", default="loopback,mobile,lte",
                        help="comma-separated; none: only --full's memory figure")  # fmt: skip
    parser.add_argument("--grid", action="store_true", help="also other batch sizes / windows")
    parser.add_argument("--full", action="store_true", help="also RSS with 1,000,000 queued")
    args = parser.parse_args()
    links = [Link("loopback"), Link("mobile", args.rtt_ms, args.uplink_kbit), GOOD_MOBILE]
    links = [link for link in links if link.name in args.links.split(",")]
    settings = [(DEFAULTS.batch_size, DEFAULTS.max_inflight_batches)]
    if args.grid:
        settings += [(100, 1), (100, 2), (100, 8), (50, 4), (250, 4), (250, 8)]
    root = Path(tempfile.mkdtemp(prefix="bench-drain-"))
    broker = Mosquitto(root / "mosquitto", devices={DEVICE: "fac-1"}).start()
    pg = Postgres(fsync=True).start()
    missed = []
    try:
        print(f"drain of {args.events:,} events to central's ingest (PostgreSQL, fsync on);"
              f" mobile link: {args.rtt_ms:.0f} ms RTT,"
              f" {args.uplink_kbit:.0f} kbit/s up")  # fmt: skip
        print(f"{'link':<10}{'batch':>6}{'window':>7}{'agent ev/s':>12}{'raw ev/s':>10}"
              f"{'agent/raw':>10}")  # fmt: skip
        for batch_size, window in settings:
            for link in links:
                ours, raw = case(
                    broker, pg, root, link, total=args.events, batch_size=batch_size, window=window
                )
                default = (batch_size, window) == settings[0]
                mark = "  (defaults)" if default else ""
                print(f"{link.name:<10}{batch_size:>6}{window:>7}{ours:>12.0f}{raw:>10.0f}"
                      f"{ours / raw:>10.0%}{mark}", flush=True)  # fmt: skip
                if default and ours / raw < TARGET:
                    missed.append(f"{link.name}: {ours / raw:.0%} < {TARGET:.0%}")
        if args.full:
            memory(broker, pg, root)
    finally:
        pg.stop()
        broker.stop()
        shutil.rmtree(root, ignore_errors=True)
    for line in missed:
        print(f"TARGET MISSED at the defaults: {line}", file=sys.stderr)
    return 1 if missed else 0


def memory(broker: Mosquitto, pg: Postgres, root: Path) -> None:
    queued = 1_000_000
    folder = root / "memory"
    folder.mkdir()
    print(f"memory with {queued:,} events queued (filling the outbox...)", flush=True)
    fill(folder / "device.db", queued)
    central = Central(broker, pg, folder)
    try:
        sync = _sync(DEFAULTS.batch_size, DEFAULTS.max_inflight_batches)
        _, samples = agent_drain(broker, broker.tls_port, folder, queued, sample_for=60, **sync)
    finally:
        central.stop()
    print(f"  agent RSS min {min(samples):.1f} MB, max {max(samples):.1f} MB over"
          f" {len(samples)} samples in 60 s (target flat, <= 100 MB)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
