"""``/metrics`` in the Prometheus text format (prometheus-client).

A collector reads the fleet from the database at scrape time: device counts
by status, per-device gauges from the latest health report, open alerts per
rule. Nothing is kept in process memory, so any API replica can be scraped.
Who may scrape is decided by ``central.api.app`` (a token, or a separate
listener; never open to anyone who reaches the API).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from central.db.engine import Database
from central.db.tables import alerts, devices

DEVICE_GAUGES = {
    "cpu_temp_c": ("kiosk_device_cpu_temperature_celsius", "CPU temperature"),
    "outbox_depth": ("kiosk_device_outbox_depth", "Events waiting on the device"),
    "outbox_oldest_age_s": (
        "kiosk_device_outbox_oldest_age_seconds",
        "Age of the oldest unsent event",
    ),
    "reservation_age_s": ("kiosk_device_reservation_age_seconds", "Age of the reservation cache"),
    "disk_free_mb": ("kiosk_device_disk_free_megabytes", "Free disk space"),
}


class FleetCollector(Collector):
    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        with self.db.read() as conn:
            rows = conn.execute(select(devices.c.id, devices.c.facility, devices.c.status,
                                       devices.c.health)).all()  # fmt: skip
            open_alerts = conn.execute(
                select(alerts.c.rule, func.count()).where(alerts.c.state != "resolved")
                .group_by(alerts.c.rule)
            ).all()  # fmt: skip
        by_status = GaugeMetricFamily("kiosk_devices", "Devices by status", labels=["status"])
        for status, count in sorted(Counter(r.status for r in rows).items()):
            by_status.add_metric([status], count)
        yield by_status
        online = GaugeMetricFamily(
            "kiosk_device_online", "1 when online", labels=["device", "facility"]
        )
        gauges = {
            k: GaugeMetricFamily(n, h, labels=["device", "facility"])
            for k, (n, h) in DEVICE_GAUGES.items()
        }
        for r in rows:
            labels = [r.id, r.facility or ""]
            online.add_metric(labels, 1.0 if r.status == "online" else 0.0)
            for key, family in gauges.items():
                value = (r.health or {}).get(key)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    family.add_metric(labels, float(value))
        yield online
        yield from gauges.values()
        by_rule = GaugeMetricFamily(
            "kiosk_alerts_open", "Open or acknowledged alerts", labels=["rule"]
        )
        for rule, count in open_alerts:
            by_rule.add_metric([rule], int(count))
        yield by_rule


def add_metrics(app: FastAPI, db: Database, dependencies: Sequence[Any] = ()) -> None:
    """``/metrics`` on ``app``; ``dependencies`` guard it (the metadata token)."""
    registry = CollectorRegistry()
    registry.register(FleetCollector(db))

    @app.get("/metrics", include_in_schema=False, dependencies=list(dependencies))
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")
