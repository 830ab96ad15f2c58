"""One process of simulated devices for the fleet soak (``bench/fleet.py``).

Each device is the real thing except for its hardware: a real sync agent
(:class:`sync.agent.Agent`) with its own MQTT session and client
certificate, its own device store (SQLite file) and outbox, and a check-in
generator that appends events through a second store connection, as the
touchscreen and lockctl do. Many devices share this process (one agent
thread each, plus paho's), which is what the issue allows.

``python -m bench.fleetsim PLAN.json`` runs the devices named in the plan
until SIGTERM. Every ``status_every`` seconds it writes, atomically, a status
file the orchestrator reads: per device the last seq the store ever gave
(``sqlite_sequence``: a rolled-back append takes none), the outbox depth,
the reservation version and the cache hash. The generator starts appending
when the plan's ``start_file`` exists (every device connected: the start-up
storm is not the steady state measured) and stops when its ``stop_file``
exists (the drain at the end of a run). An append that fails is counted and
logged and the generator goes on; the status says whether it is alive.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sync.agent import Agent
from sync.config import load_config
from sync.outbox import NewEvent, Outbox
from sync.store import Store, open_store

log = logging.getLogger("fleetsim")


@dataclass
class SimDevice:
    id: str
    facility: str
    door: str
    agent: Agent
    writer: Store  # the generator's own connection, like the touchscreen's
    thread: threading.Thread
    appended: int = 0
    append_errors: int = 0


def start_devices(plan: dict[str, Any]) -> list[SimDevice]:
    devices = []
    for entry in plan["devices"]:
        config = load_config(entry["config"])
        agent = Agent(config)
        thread = threading.Thread(target=agent.run, name=f"agent-{config.device.id}", daemon=True)
        writer = open_store(config.store.path)
        device = config.device
        devices.append(SimDevice(device.id, device.facility, entry["door"], agent, writer, thread))
        thread.start()
    return devices


def generate(devices: list[SimDevice], plan: dict[str, Any], stop: threading.Event) -> None:
    """Check-ins at ``rate_per_device_per_minute`` each (Poisson), with the door
    events lockctl would record: granted, unlocked, locked."""
    rng = random.Random(plan.get("seed", 1))
    rate = plan["rate_per_device_per_minute"] * len(devices) / 60.0
    start_file, stop_file = Path(plan["start_file"]), Path(plan["stop_file"])
    while not start_file.exists() and not stop.wait(0.2):
        pass
    while not stop.is_set() and not stop_file.exists():
        stop.wait(rng.expovariate(rate) if rate > 0 else 1.0)
        if stop.is_set() or stop_file.exists():
            break  # nothing after the stop: the orchestrator counts from then on
        device = rng.choice(devices)
        # Base32 like the product's credential references: hex digits could
        # line up twelve in a row, which the personal-data guard refuses.
        ref = base64.b32encode(rng.randbytes(10)).decode().lower()
        events = [
            NewEvent("checkin.granted", {"door": device.door, "via": "card", "unlock_seconds": 5}),
            NewEvent("door.unlocked", {"door": device.door, "reason": "check-in", "ref": ref}),
            NewEvent("door.locked", {"door": device.door, "reason": "deadline"}),
        ]
        try:
            Outbox(device.writer).append_many(events)
            device.appended += len(events)
        except Exception as exc:  # counted and reported: one bad append must not end the run
            device.append_errors += 1
            log.warning("append failed: %s: %s", type(exc).__name__, exc,
                        extra={"device": device.id})  # fmt: skip


def status(devices: list[SimDevice]) -> dict[str, Any]:
    now = time.time()
    report: dict[str, Any] = {}
    for device in devices:
        store = device.writer
        seq = store.query("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'")
        report[device.id] = {
            "last_seq": int(seq[0]["seq"]) if seq else 0,
            "outbox": Outbox(store).depth(),
            "version": device.agent.cache.version(),
            "hash": device.agent.cache.active_hash(now),
            "appended": device.appended,
            "append_errors": device.append_errors,
            "connected": device.agent._connected,
        }
    return report


def write_status(path: Path, devices: list[SimDevice], generating: bool) -> None:
    """``generating``: the generator may still append (read before the
    figures, so a status saying False holds every append)."""
    temp = path.with_suffix(".tmp")
    body = {"at": time.time(), "pid": os.getpid(), "generating": generating,
            "devices": status(devices)}  # fmt: skip
    temp.write_text(json.dumps(body))
    temp.replace(path)


def main(argv: list[str]) -> int:
    plan = json.loads(Path(argv[0]).read_text())
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    devices = start_devices(plan)
    generator = threading.Thread(target=generate, args=(devices, plan, stop), daemon=True)
    generator.start()
    status_file = Path(plan["status_file"])
    while not stop.wait(plan.get("status_every", 2.0)):
        write_status(status_file, devices, generator.is_alive())
    for device in devices:
        device.agent.stop()
    for device in devices:
        device.thread.join(10)
        device.writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
