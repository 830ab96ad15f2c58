"""Central ops over the database: health history with retention and
downsampling, the alert lifecycle, and one evaluation round of the alert
rules over the fleet (with notifications).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from statistics import fmean
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update

from central.db.engine import Database, aware, utc
from central.db.tables import alerts, devices, health_samples
from central.ops.alerts import AlertEngine, DeviceSnapshot, Transition
from central.ops.notify import Notifier, NotifyError

log = logging.getLogger(__name__)

NUMERIC_FIGURES = (
    "cpu_temp_c", "load1", "mem_available_mb", "disk_free_mb", "outbox_depth",
    "outbox_oldest_age_s", "reservation_age_s", "store_bytes",
)  # fmt: skip


@dataclass(frozen=True)
class Retention:
    raw: timedelta = timedelta(days=2)
    hourly: timedelta = timedelta(days=90)


def health_figures(health: dict[str, Any]) -> dict[str, float]:
    """The numeric figures of a health report that the history keeps."""
    return {
        k: float(health[k])
        for k in NUMERIC_FIGURES
        if isinstance(health.get(k), int | float) and not isinstance(health.get(k), bool)
    }


class HealthHistory:
    def __init__(self, db: Database, retention: Retention | None = None) -> None:
        self.db = db
        self.retention = retention or Retention()

    def record(self, device: str, at: datetime, health: dict[str, Any]) -> None:
        figures = health_figures(health)
        with self.db.write() as conn:
            conn.execute(
                insert(health_samples).values(
                    device=device, at=utc(at), resolution=0, figures=figures
                )
            )

    def series(self, device: str, since: datetime) -> list[tuple[datetime, dict[str, float]]]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(health_samples.c.at, health_samples.c.figures)
                .where(health_samples.c.device == device, health_samples.c.at >= utc(since))
                .order_by(health_samples.c.at)
            ).all()
        return [(aware(r.at), dict(r.figures)) for r in rows]

    def compact(self, now: datetime) -> tuple[int, int]:
        """Fold raw samples older than ``retention.raw`` into hourly means and
        drop hourly means older than ``retention.hourly``. Returns (folded, dropped)."""
        raw_cutoff = utc(now - self.retention.raw).replace(minute=0, second=0, microsecond=0)
        with self.db.write() as conn:
            old = conn.execute(
                select(health_samples.c.pk, health_samples.c.device, health_samples.c.at,
                       health_samples.c.figures)
                .where(health_samples.c.resolution == 0, health_samples.c.at < raw_cutoff)
            ).all()  # fmt: skip
            buckets: dict[tuple[str, datetime], list[dict[str, float]]] = defaultdict(list)
            for row in old:
                buckets[(row.device, row.at.replace(minute=0, second=0, microsecond=0))].append(
                    row.figures
                )
            for (device, hour), samples in buckets.items():
                keys = {k for s in samples for k in s}
                mean = {k: fmean(s[k] for s in samples if k in s) for k in keys}
                conn.execute(
                    insert(health_samples).values(
                        device=device, at=hour, resolution=3600, figures=mean
                    )
                )
            if old:
                conn.execute(
                    delete(health_samples).where(health_samples.c.pk.in_([r.pk for r in old]))
                )
            dropped = conn.execute(
                delete(health_samples).where(
                    health_samples.c.resolution == 3600,
                    health_samples.c.at < utc(now - self.retention.hourly),
                )
            ).rowcount
        return len(old), int(dropped or 0)


class AlertStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def apply(self, transitions: Sequence[Transition]) -> list[int]:
        """Open or resolve alerts; returns the ids that changed."""
        changed: list[int] = []
        with self.db.write() as conn:
            for t in transitions:
                live = and_(alerts.c.device == t.device, alerts.c.rule == t.rule,
                            alerts.c.state != "resolved")  # fmt: skip
                if t.opened:
                    existing = conn.execute(select(alerts.c.pk).where(live)).first()
                    if existing is None:
                        pk = conn.execute(
                            insert(alerts)
                            .values(
                                device=t.device, rule=t.rule, detail=t.detail, state="open",
                                opened_at=utc(t.at), notified=0,
                            )
                            .returning(alerts.c.pk)
                        ).scalar_one()  # fmt: skip
                        changed.append(int(pk))
                else:
                    for row in conn.execute(select(alerts.c.pk).where(live)).all():
                        conn.execute(
                            update(alerts).where(alerts.c.pk == row.pk)
                            .values(state="resolved", resolved_at=utc(t.at))
                        )  # fmt: skip
                        changed.append(int(row.pk))
        return changed

    def acknowledge(self, alert_id: int, username: str, now: datetime) -> bool:
        with self.db.write() as conn:
            result = conn.execute(
                update(alerts).where(alerts.c.pk == alert_id, alerts.c.state == "open")
                .values(state="acknowledged", acknowledged_by=username, acknowledged_at=utc(now))
            )  # fmt: skip
            return bool(result.rowcount)

    def get(self, alert_id: int) -> dict[str, Any] | None:
        with self.db.read() as conn:
            row = conn.execute(select(alerts).where(alerts.c.pk == alert_id)).first()
        return None if row is None else dict(row._mapping)

    def firing(self) -> list[tuple[str, str]]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(alerts.c.device, alerts.c.rule).where(alerts.c.state != "resolved")
            ).all()
        return [(r.device, r.rule) for r in rows]

    def listing(self, state: str | None = None, device: str | None = None,
                limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:  # fmt: skip
        query = select(alerts).order_by(alerts.c.opened_at.desc()).limit(limit).offset(offset)
        if state:
            query = query.where(alerts.c.state == state)
        if device:
            query = query.where(alerts.c.device == device)
        with self.db.read() as conn:
            return [dict(r._mapping) for r in conn.execute(query).all()]

    def open_counts(self) -> dict[str, int]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(alerts.c.device, func.count()).where(alerts.c.state != "resolved")
                .group_by(alerts.c.device)
            ).all()  # fmt: skip
        return {r[0]: int(r[1]) for r in rows}


def fleet_snapshots(db: Database) -> list[DeviceSnapshot]:
    with db.read() as conn:
        rows = conn.execute(select(devices)).all()
    return [
        DeviceSnapshot(
            device=r.id,
            online=r.status == "online",
            last_seen=aware(r.last_seen) if r.last_seen else None,
            health=dict(r.health or {}),
            health_at=aware(r.health_at) if r.health_at else None,
            door_alarms=frozenset((r.health or {}).get("door_alarms", []) or []),
        )
        for r in rows
    ]


def evaluate_round(
    db: Database,
    engine: AlertEngine,
    store: AlertStore,
    notifiers: Sequence[Notifier],
    now: datetime,
) -> list[Transition]:
    """One evaluation of every rule for every device; notify each transition."""
    transitions = engine.evaluate(fleet_snapshots(db), now)
    store.apply(transitions)
    for transition in transitions:
        for notifier in notifiers:
            try:
                notifier.send(transition)
            except NotifyError as exc:
                where = {"rule": transition.rule, "device": transition.device}
                log.error("notification failed", extra={**where, "error": str(exc)})
    return transitions


class OpsLoop:
    """Runs the alert rules every ``interval`` seconds and compacts the
    health history every ``compact_every`` seconds, on a thread of its own;
    ``close()`` stops it. Errors of one round are logged; the loop goes on."""

    def __init__(
        self,
        db: Database,
        engine: AlertEngine,
        notifiers: Sequence[Notifier] = (),
        interval: float = 15.0,
        compact_every: float = 3600.0,
    ) -> None:
        self.db, self.engine, self.notifiers = db, engine, notifiers
        self.interval, self.compact_every = interval, compact_every
        self.store, self.history = AlertStore(db), HealthHistory(db)
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ops-loop", daemon=True)

    def start(self) -> OpsLoop:
        # Alerts already open stay open across a restart (no duplicate notifications).
        self.engine.restore(self.store.firing(), datetime.now(UTC))
        self._thread.start()
        return self

    def _run(self) -> None:
        last_compact = 0.0
        while not self._stop.wait(0 if self.rounds == 0 else self.interval):
            try:
                evaluate_round(self.db, self.engine, self.store, self.notifiers, datetime.now(UTC))
                if time.monotonic() - last_compact >= self.compact_every:
                    self.history.compact(datetime.now(UTC))
                    last_compact = time.monotonic()
            except Exception:
                log.exception("ops round failed")
            self.rounds += 1

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
