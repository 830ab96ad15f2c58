"""The fleet simulator through real mosquitto into the real ingest worker:
devices appear with the right status and health, events are stored, and the
alert rules find the hot, backlogged, stale and offline devices."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from central.db.engine import Database
from central.db.tables import devices, events
from central.ops.alerts import AlertEngine, AlertThresholds
from central.ops.service import AlertStore, evaluate_round
from central.simulate import FleetSimulator, make_fleet
from tests.harness.central import worker_thread, write_config
from tests.harness.mosquitto import Mosquitto
from tests.harness.services import wait_until


def test_simulator_fleet_reaches_ingest_and_alerts(
    tmp_path: Path, fresh_mosquitto: Mosquitto
) -> None:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    config = write_config(tmp_path, fresh_mosquitto, url)
    fleet = make_fleet(40, seed=3)
    profiles = Counter(d.profile for d in fleet)
    ident = fresh_mosquitto.identity("central")
    with worker_thread(config):
        sim = FleetSimulator("localhost", fresh_mosquitto.tls_port, fleet,
                             tls=(ident.ca, ident.cert, ident.key), seed=3)  # fmt: skip
        try:
            sim.announce()
            for _ in range(3):
                sim.step()
            db = Database(url)
            try:

                def all_known() -> bool:
                    with db.read() as conn:
                        rows = conn.execute(select(devices.c.id, devices.c.health)).all()
                    online = sum(1 for _, h in rows if h)
                    return len(rows) == 40 and online == 40 - profiles["offline"]

                wait_until(all_known, 20, "every simulated device in the registry")
                expected_events = sum(d.seq for d in fleet)
                wait_until(
                    lambda: _count(db) == expected_events, 20, "every simulated event stored"
                )
                engine = AlertEngine(AlertThresholds(fire_after_s=60, offline_after_s=60))
                now = datetime.now(UTC)
                for moment in (now, now + timedelta(seconds=61)):
                    evaluate_round(db, engine, AlertStore(db), [], moment)
                opened = Counter(rule for _, rule in AlertStore(db).firing())
            finally:
                db.close()
        finally:
            sim.close()
    assert opened["offline"] == profiles["offline"]
    assert opened["cpu_hot"] == profiles["hot"]
    assert opened["outbox_backlog"] == profiles["backlog"]
    assert opened["reservations_stale"] == profiles["stale"]


def _count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(events)).scalar_one())
