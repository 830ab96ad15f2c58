"""Central ops speed, each against a raw baseline in the same run.

    python bench/ops.py [--devices 1000] [--renders 50] [--json]

* Fleet page: p95 time to render ``/`` for a signed-in operator with N
  devices (HTTP through the ASGI stack), against the bare query that reads
  the same rows.
* Health ingest: health messages recorded per second (registry update and
  history sample, one transaction each), against a raw SQLAlchemy insert
  loop of the same rows.
* Alert evaluation: time for one round of every rule over N devices,
  against a loop that only checks one threshold per device.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyotp  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from central.api.app import create_app  # noqa: E402
from central.db.engine import Database, utc  # noqa: E402
from central.db.tables import devices, health_samples  # noqa: E402
from central.ingest.store import IngestStore  # noqa: E402
from central.ops.alerts import AlertEngine  # noqa: E402
from central.ops.dashboard.core import FLEET_PAGE  # noqa: E402
from central.ops.service import fleet_snapshots  # noqa: E402
from central.ops.staff import StaffStore  # noqa: E402
from central.simulate import make_fleet  # noqa: E402
from tests.harness.keys import fixed_code_key  # noqa: E402

PASSWORD = "benchmark password"


def p95(samples: list[float]) -> float:
    return sorted(samples)[int(len(samples) * 0.95) - 1]


def seed(db: Database, count: int) -> None:
    now = datetime.now(UTC)
    rng_fleet = make_fleet(count)
    with db.write() as conn:
        for d in rng_fleet:
            status = "offline" if d.profile == "offline" else "online"
            health = d.health(now, random.Random(1)).model_dump(mode="json")
            conn.execute(insert(devices).values(
                id=d.id, facility=d.facility, status=status, session=1, last_seen=utc(now),
                versions={"kiosk": "0.1.0"}, health=health, health_at=utc(now),
            ))  # fmt: skip


def fleet_page(db: Database, renders: int, count: int) -> dict[str, float]:
    secret = StaffStore(db).create("bench", PASSWORD, "operator")
    with TestClient(create_app(db, code_key=fixed_code_key)) as client:
        page = client.get("/login").text
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        signed = client.post("/login", follow_redirects=False,
                             data={"username": "bench", "password": PASSWORD, "csrf": csrf,
                                   "code": pyotp.TOTP(secret).now()})  # fmt: skip
        # An unauthenticated "/" answers 200 with the sign-in page: without
        # these checks the figure could be the sign-in page's.
        if signed.status_code != 303 or signed.headers.get("location") != "/":
            raise SystemExit(f"bench: the staff sign-in failed (HTTP {signed.status_code})")
        ours = []
        for _ in range(renders):
            t0 = time.perf_counter()
            response = client.get("/?sort=temperature&desc=true")
            ours.append(time.perf_counter() - t0)
            if response.status_code != 200 or '<table id="fleet">' not in response.text:
                raise SystemExit("bench: the fleet page did not render (signed out?)")
            rows = response.text.count('<tr id="device-')
            if rows != min(count, FLEET_PAGE):
                raise SystemExit(f"bench: the fleet page showed {rows} devices")
    raw = []
    for _ in range(renders):
        t0 = time.perf_counter()
        with db.read() as conn:
            conn.execute(select(devices)).all()
        raw.append(time.perf_counter() - t0)
    return {"ours_p95_ms": p95(ours) * 1e3, "raw_query_p95_ms": p95(raw) * 1e3}


def health_ingest(db: Database, count: int) -> dict[str, float]:
    store = IngestStore(db, "bench")
    fleet = make_fleet(count, seed=11)
    now = datetime.now(UTC)
    rng = random.Random(2)
    healths = [(d.id, d.health(now, rng)) for d in fleet]
    t0 = time.perf_counter()
    for device, health in healths:
        store.record_health(device, health)  # registry + history sample, one commit
    ours = len(healths) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for device, health in healths:
        with db.write() as conn:
            row = {"device": device, "at": utc(now), "resolution": 0,
                   "figures": {"cpu_temp_c": health.cpu_temp_c}}  # fmt: skip
            conn.execute(insert(health_samples).values(**row))
    raw = len(healths) / (time.perf_counter() - t0)
    return {"ours_per_s": ours, "raw_insert_per_s": raw}


def alert_round(db: Database, rounds: int = 20) -> dict[str, float]:
    snapshots = fleet_snapshots(db)
    engine, now = AlertEngine(), datetime.now(UTC)
    ours = []
    for i in range(rounds):
        t0 = time.perf_counter()
        engine.evaluate(snapshots, now + timedelta(seconds=30 * i))
        ours.append(time.perf_counter() - t0)
    raw = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        _ = [s.device for s in snapshots if (s.health.get("cpu_temp_c") or 0) > 75]
        raw.append(time.perf_counter() - t0)
    return {
        "ours_median_ms": statistics.median(ours) * 1e3,
        "raw_median_ms": statistics.median(raw) * 1e3,
        "devices": len(snapshots),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--renders", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'central.db'}")
        seed(db, args.devices)
        results = {
            "fleet_page": fleet_page(db, args.renders, args.devices),
            "health_ingest": health_ingest(db, args.devices),
            "alert_round": alert_round(db),
        }
        db.close()
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    page, health, rnd = results["fleet_page"], results["health_ingest"], results["alert_round"]
    print(f"fleet page, {args.devices} devices: p95 {page['ours_p95_ms']:.1f} ms"
          f" (bare query p95 {page['raw_query_p95_ms']:.1f} ms)")  # fmt: skip
    print(f"health ingest: {health['ours_per_s']:.0f} msg/s"
          f" (raw insert {health['raw_insert_per_s']:.0f} rows/s)")  # fmt: skip
    print(f"alert round, {rnd['devices']:.0f} devices: {rnd['ours_median_ms']:.1f} ms"
          f" (one-threshold loop {rnd['raw_median_ms']:.2f} ms)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
