"""Fleet soak with faults: many real sync agents against one central.

    python -m bench.fleet                       # 1,000 devices, 30 minutes
    python -m bench.fleet --devices 60 --minutes 3 --procs 3   # a short run

The stand is the production path on one machine: PostgreSQL (fsync on), the
real mosquitto with mutual TLS and the fleet ACL, two ``python -m central
ingest`` workers on the shared subscription, and ``python -m central serve``
(reservation publisher, alert rules). Each simulated device is a real sync
agent with its own MQTT session, client certificate and device store, fed by
a check-in generator (``bench/fleetsim.py``; several devices per process).
Central changes reservations all along (new bookings and cancellations).

Faults on a schedule (fractions of the run): broker restart, broker freeze,
an ingest worker killed -9 and restarted, PostgreSQL restarted, a device
process killed -9 while it appends, and a group of devices cut off (their
process frozen) for longer than the offline alert needs.

At the end the generators stop, the outboxes drain, and the run checks
(``bench/fleet_report.py``): zero events lost or duplicated per device (by
seq and id), every device's reservation cache equal to central's (hash),
alerts opened for the cut-off group and for nothing else and all closed,
flat memory for central and the broker, p99 latency from device commit to
central commit. It writes ``report.json``, ``report.md`` and PNG plots to
``--out`` and exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fleet_report import Fault, Verdict, verify, write_report  # noqa: E402
from central.db.engine import Database  # noqa: E402
from central.ingest.store import IngestStore  # noqa: E402
from central.reservations.store import ReservationStore  # noqa: E402
from contracts.mqtt import Reservation  # noqa: E402
from tests.harness import clockrun  # noqa: E402
from tests.harness.central import central_process, write_config  # noqa: E402
from tests.harness.keys import write_test_key  # noqa: E402
from tests.harness.mosquitto import Mosquitto  # noqa: E402
from tests.harness.postgres import Postgres  # noqa: E402
from tests.harness.services import ServiceProcess, free_port, wait_until  # noqa: E402
from tests.harness.syncdev import write_device_config  # noqa: E402

FACILITY_SIZE = 10  # devices per facility


@dataclass
class Options:
    devices: int = 1000
    minutes: float = 30.0
    procs: int = 10
    workers: int = 2
    rate: float = 1.0  # check-ins per device per minute (peak hour)
    reservations: int = 200  # per facility at the start
    changes_per_minute: float = 60.0
    health_seconds: float = 60.0
    cut_off_seconds: float = 150.0
    freeze_seconds: float = 20.0
    reconnect_max: float = 30.0
    evaluate_every: float = 5.0
    offline_after: float = 120.0
    fire_after: float = 60.0
    clear_after: float = 120.0
    out: Path = Path("artifacts/fleet")
    seed: int = 7


@dataclass
class Stand:
    """Every process of the run, and where its files are."""

    opts: Options
    root: Path
    pg: Postgres = field(default_factory=lambda: Postgres(fsync=True))
    broker: Mosquitto | None = None
    url: str = ""
    db: Database | None = None
    central: dict[str, ServiceProcess] = field(default_factory=dict)
    device_procs: list[ServiceProcess] = field(default_factory=list)
    plans: list[dict[str, Any]] = field(default_factory=list)
    facilities: dict[str, list[str]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)

    # -- set-up --------------------------------------------------------------

    def start(self) -> None:
        self.pg.start()
        self.url = self.pg.create_database()
        self.db = Database(self.url)  # creates the schema at the newest revision
        devices = {f"d{n:04d}": f"f{n // FACILITY_SIZE:03d}" for n in range(self.opts.devices)}
        for device, facility in devices.items():
            self.facilities.setdefault(facility, []).append(device)
        self.broker = Mosquitto(self.root / "broker", devices=dict(devices)).start()
        store = IngestStore(self.db, "bench")
        for device, facility in devices.items():
            store.register_device(device, facility)
        self._seed_reservations()
        self._start_central()
        self._write_plans(devices)
        for index in range(len(self.plans)):
            self.device_procs.append(self._device_process(index))
            self.device_procs[-1].start()

    def _central_config(self, worker: str) -> Path:
        assert self.broker is not None
        o = self.opts
        key = write_test_key(self.root / "central" / "code-master.key")
        extra = (
            f'[reservations]\ncode_key_file = "{key}"\n\n'
            f"[ops]\nevaluate_every_seconds = {o.evaluate_every}\n\n[ops.thresholds]\n"
            f"fire_after_s = {o.fire_after}\nclear_after_s = {o.clear_after}\n"
            f"offline_after_s = {o.offline_after}\n"
            f"heartbeat_stale_s = {max(180.0, 3 * o.health_seconds)}\n"
        )
        return write_config(self.root / "central", self.broker, self.url, worker_id=worker,
                            extra=extra)  # fmt: skip

    def _start_central(self) -> None:
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        for n in range(1, self.opts.workers + 1):
            name = f"ingest-{n}"
            config = self._central_config(f"w{n}")
            process = central_process(
                name, ["ingest", "--config", str(config)], logs / f"{name}.log"
            )
            process.start()
            self.central[name] = process
        config = self._central_config("")
        port = free_port()
        serve = central_process("serve", ["serve", "--config", str(config), "--port", str(port)],
                                logs / "serve.log")  # fmt: skip
        serve.start()
        serve.wait_ready(lambda: _port_open(port), 60)
        self.central["serve"] = serve

    def _seed_reservations(self) -> None:
        assert self.db is not None
        store = ReservationStore(self.db)
        rng = random.Random(self.opts.seed)
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        for facility in self.facilities:
            for n in range(self.opts.reservations):
                store.create(_reservation(rng, facility, start, n))

    def _write_plans(self, devices: dict[str, str]) -> None:
        assert self.broker is not None
        names = sorted(devices)
        per = -(-len(names) // self.opts.procs)
        for index in range(self.opts.procs):
            group = names[index * per : (index + 1) * per]
            if not group:
                break
            entries = []
            for device in group:
                folder = self.root / "devices" / device
                config = write_device_config(
                    self.broker, folder, device, devices[device],
                    batch_size=100, max_inflight_batches=4,
                    health_interval_seconds=self.opts.health_seconds, ack_timeout_seconds=20,
                    reconnect_min_seconds=0.5, reconnect_max_seconds=self.opts.reconnect_max,
                    poll_interval_seconds=0.5, resync_timeout_seconds=15,
                )  # fmt: skip
                entries.append({"config": str(config), "door": "main"})
            plan = {
                "devices": entries,
                "rate_per_device_per_minute": self.opts.rate,
                "start_file": str(self.root / "start-generators"),
                "stop_file": str(self.root / "stop-generators"),
                "status_file": str(self.root / f"status-{index}.json"),
                "seed": self.opts.seed + index,
            }
            path = self.root / f"plan-{index}.json"
            path.write_text(json.dumps(plan))
            self.plans.append(plan | {"path": str(path)})

    def _device_process(self, index: int) -> ServiceProcess:
        plan = self.plans[index]
        return ServiceProcess(
            f"devices-{index}",
            # A synchronised clock, as on a device with NTP (this machine's may not be).
            clockrun.argv(True, "bench.fleetsim", plan["path"]),
            self.root / "logs" / f"devices-{index}.log",
            env={"PYTHONPATH": str(ROOT)},
        )

    # -- reading the devices -------------------------------------------------

    def device_status(self) -> dict[str, dict[str, Any]]:
        merged: dict[str, dict[str, Any]] = {}
        for plan in self.plans:
            path = Path(plan["status_file"])
            try:
                merged.update(json.loads(path.read_text())["devices"])
            except (OSError, ValueError, KeyError):
                continue
        return merged

    def stop(self) -> None:
        for process in self.device_procs:
            process.stop()
        for process in self.central.values():
            process.stop()
        if self.broker is not None:
            self.broker.stop()
        if self.db is not None:
            self.db.close()
        self.pg.stop()


def _port_open(port: int) -> bool:
    from tests.harness.services import port_open

    return port_open(port)


def _reservation(rng: random.Random, facility: str, start: datetime, n: int) -> Reservation:
    begins = start + timedelta(minutes=30 * rng.randrange(0, 40))
    return Reservation(
        id=f"{facility}-r{n}-{uuid.uuid4().hex[:8]}",
        facility=facility,
        door="main",
        starts_at=begins,
        ends_at=begins + timedelta(hours=1),
        credential_refs=[uuid.uuid4().hex],
    )


class Sampler(threading.Thread):
    """Every few seconds: memory of central's processes and the broker,
    events committed at central, devices connected."""

    def __init__(self, stand: Stand, every: float = 5.0) -> None:
        super().__init__(name="sampler", daemon=True)
        self.stand, self.every = stand, every
        self.samples: list[dict[str, Any]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        while not self.halt.wait(self.every):
            sample: dict[str, Any] = {"t": time.monotonic() - start, "rss_mb": {}}
            watched = dict(self.stand.central)
            if self.stand.broker is not None and self.stand.broker.process is not None:
                watched["broker"] = self.stand.broker.process
            for name, process in watched.items():
                sample["rss_mb"][name] = _rss_mb(process.pid)
            sample["events"] = _count_events(self.stand)
            status = self.stand.device_status()
            sample["connected"] = sum(1 for s in status.values() if s.get("connected"))
            sample["outbox"] = sum(int(s.get("outbox", 0)) for s in status.values())
            sample["load"] = os.getloadavg()[0]  # the machine's, so a reader can judge the run
            self.samples.append(sample)


def _rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _count_events(stand: Stand) -> int | None:
    from sqlalchemy import func, select

    from central.db.tables import events

    assert stand.db is not None
    try:
        with stand.db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(events)).scalar_one())
    except Exception:  # PostgreSQL may be restarting: a gap in the plot, not a failure
        return None


class Changer(threading.Thread):
    """Central's reservation changes during the run: new bookings and cancellations."""

    def __init__(self, stand: Stand) -> None:
        super().__init__(name="changer", daemon=True)
        self.stand = stand
        self.halt = threading.Event()
        self.made = 0
        self.failed = 0

    def run(self) -> None:
        assert self.stand.db is not None
        store = ReservationStore(self.stand.db)
        rng = random.Random(self.stand.opts.seed + 99)
        interval = 60.0 / self.stand.opts.changes_per_minute
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        created: list[str] = []
        while not self.halt.wait(interval):
            facility = rng.choice(sorted(self.stand.facilities))
            try:
                if created and rng.random() < 0.3:
                    store.cancel(created.pop(rng.randrange(len(created))))
                else:
                    reservation = _reservation(rng, facility, start, 100000 + self.made)
                    store.create(reservation)
                    created.append(reservation.id)
                self.made += 1
            except Exception:  # PostgreSQL restarting: counted, the next change goes on
                self.failed += 1


def schedule(opts: Options) -> list[tuple[float, str]]:
    """(seconds from the start, fault) for a run of ``opts.minutes``."""
    total = opts.minutes * 60
    plan = [
        (0.10, "broker_restart"),
        (0.22, "broker_freeze"),
        (0.34, "ingest_kill"),
        (0.46, "postgres_restart"),
        (0.56, "device_kill"),
        (0.62, "device_cut_off"),
    ]
    return [(fraction * total, name) for fraction, name in plan]


def inject(stand: Stand, name: str, started: float) -> Fault:
    """Run one fault; returns what was done and when (seconds from the start)."""
    assert stand.broker is not None
    at = time.monotonic() - started
    affected: list[str] = []
    if name == "broker_restart":
        stand.broker.stop()
        time.sleep(5)
        stand.broker.start()
    elif name == "broker_freeze":
        stand.broker.freeze()
        time.sleep(stand.opts.freeze_seconds)
        stand.broker.thaw()
    elif name == "ingest_kill":
        process = stand.central["ingest-1"]
        process.kill()
        time.sleep(5)
        process.start()
    elif name == "postgres_restart":
        assert stand.pg.process is not None
        stand.pg.process.signal(2)  # fast shutdown: clients are cut off
        stand.pg.process.stop(grace=30)
        time.sleep(3)
        stand.pg.process.start()
        wait_until(stand.pg._ready, 30, "postgres to come back")
    elif name == "device_kill":
        process = stand.device_procs[0]
        affected = [Path(e["config"]).parent.name for e in stand.plans[0]["devices"]]
        process.kill()
        time.sleep(3)
        process.start()
    elif name == "device_cut_off":
        index = min(1, len(stand.device_procs) - 1)
        process = stand.device_procs[index]
        affected = [Path(e["config"]).parent.name for e in stand.plans[index]["devices"]]
        process.signal(19)  # SIGSTOP: the link is silent, as when a network is cut
        time.sleep(stand.opts.cut_off_seconds)
        process.signal(18)  # SIGCONT
    return Fault(name, at, time.monotonic() - started, affected)


def run(opts: Options) -> Verdict:
    root = Path(tempfile.mkdtemp(prefix="kiosk-fleet-"))
    stand = Stand(opts, root)
    print(f"fleet soak: {opts.devices} devices in {opts.procs} processes, {opts.minutes} min,"
          f" {opts.workers} ingest workers, files in {root}")  # fmt: skip
    try:
        stand.start()
        wait_until(lambda: sum(1 for s in stand.device_status().values() if s.get("connected"))
                   >= opts.devices, 60 + opts.devices * 0.2, "every device to connect")  # fmt: skip
        print(f"  all {opts.devices} devices connected")
        sampler, changer = Sampler(stand), Changer(stand)
        sampler.start()
        changer.start()
        started = time.monotonic()
        (root / "start-generators").touch()
        for at, name in schedule(opts):
            time.sleep(max(0.0, at - (time.monotonic() - started)))
            print(f"  {time.monotonic() - started:7.1f} s  fault: {name}")
            stand.faults.append(inject(stand, name, started))
        time.sleep(max(0.0, opts.minutes * 60 - (time.monotonic() - started)))
        changer.halt.set()
        (root / "stop-generators").touch()
        print("  generators stopped; draining")
        verdict, latencies = verify(stand, sampler, changer, started)
        sampler.halt.set()
        write_report(verdict, sampler.samples, opts.out, latencies)
        return verdict
    finally:
        stand.stop()


def parse(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    o = Options()
    parser.add_argument("--devices", type=int, default=o.devices)
    parser.add_argument("--minutes", type=float, default=o.minutes)
    parser.add_argument("--procs", type=int, default=o.procs)
    parser.add_argument("--workers", type=int, default=o.workers)
    parser.add_argument("--rate", type=float, default=o.rate,
                        help="check-ins per device per minute")  # fmt: skip
    parser.add_argument("--reservations", type=int, default=o.reservations)
    parser.add_argument("--health-seconds", type=float, default=o.health_seconds)
    parser.add_argument("--cut-off-seconds", type=float, default=o.cut_off_seconds)
    parser.add_argument("--reconnect-max", type=float, default=o.reconnect_max)
    parser.add_argument("--freeze-seconds", type=float, default=o.freeze_seconds)
    parser.add_argument("--offline-after", type=float, default=o.offline_after)
    parser.add_argument("--fire-after", type=float, default=o.fire_after)
    parser.add_argument("--clear-after", type=float, default=o.clear_after)
    parser.add_argument("--out", type=Path, default=o.out)
    args = parser.parse_args(argv)
    return Options(**vars(args))


def main(argv: list[str] | None = None) -> int:
    verdict = run(parse(sys.argv[1:] if argv is None else argv))
    print(verdict.summary())
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
