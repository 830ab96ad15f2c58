"""Staff calls from the touchscreens: ``staff_requested`` alerts.

Not a threshold rule over snapshots (:mod:`central.ops.alerts`): a call is
an event. The ingest worker opens the alert in the same transaction that
stores ``kiosk.staff_called`` (:func:`apply_staff_call_events`) and resolves
it on ``kiosk.staff_call_ended`` (the person left). Staff acknowledge it
("on the way") and finish it ("done") on the dashboard
(:class:`StaffCalls`). The alert lives in the ``alerts`` table beside the
rules' alerts, so the dashboard lists both; ``ref`` holds the device's call
id and ``resolved_by`` who finished it.

:class:`StaffCallRelay` (in ``central serve``) follows the table: it keeps
each device's retained ``devices/{d}/staffcall`` message equal to the state
of its live call (cleared when resolved) and notifies the webhook and e-mail
receivers once when a call opens and once when it is resolved. ``notified``
tracks that: 0 nothing sent yet, 1 "opened" sent, 2 finished with.

Nothing personal: a device id, a screen name, a door id and a random call id.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import insert, or_, select, update
from sqlalchemy.engine import Connection

from central.db.engine import Database, aware, utc
from central.db.tables import alerts
from central.ops.alerts import Transition
from central.ops.notify import Notifier, NotifyError
from contracts.mqtt import (
    STAFF_CALL_ENDED_EVENT,
    STAFF_CALLED_EVENT,
    StaffCallState,
    device_topic,
    encode,
)

log = logging.getLogger(__name__)

RULE = "staff_requested"
NEW, OPEN_SENT, DONE = 0, 1, 2
RETRY_NOTIFY_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class CallEvent:
    device: str
    call: str
    called: bool  # True: kiosk.staff_called; False: kiosk.staff_call_ended
    at: datetime
    detail: str = ""


def call_events(rows: Iterable[Mapping[str, Any]]) -> list[CallEvent]:
    """The staff-call events among stored event rows, in the rows' order.
    An event without a call id (older software) opens nothing."""
    found: list[CallEvent] = []
    for row in rows:
        kind, data = row.get("type"), row.get("data") or {}
        call = data.get("call") if isinstance(data, Mapping) else None
        if kind not in (STAFF_CALLED_EVENT, STAFF_CALL_ENDED_EVENT) or not isinstance(call, str):
            continue
        parts = [f"{k}: {data[k]}" for k in ("screen", "door") if isinstance(data.get(k), str)]
        found.append(
            CallEvent(str(row["device"]), call, kind == STAFF_CALLED_EVENT, row["at"],
                      ", ".join(parts))
        )  # fmt: skip
    return found


def apply_staff_call_events(
    conn: Connection, rows: Iterable[Mapping[str, Any]], now: datetime
) -> int:
    """Open or resolve ``staff_requested`` alerts for newly stored events
    (inside the ingest transaction); returns how many alerts changed."""
    changed = 0
    for event in call_events(rows):
        live = conn.execute(
            select(alerts.c.pk, alerts.c.ref).where(
                alerts.c.device == event.device, alerts.c.rule == RULE,
                alerts.c.state != "resolved",
            )
        ).first()  # fmt: skip
        if event.called and live is None:
            conn.execute(
                insert(alerts).values(
                    device=event.device, rule=RULE, detail=event.detail or "staff call",
                    state="open", opened_at=utc(now), notified=NEW, ref=event.call,
                )
            )  # fmt: skip
            changed += 1
        elif event.called and live is not None and live.ref != event.call:
            # A new call from the same screen while one is still live: the
            # screen shows the new call, so the alert follows it.
            conn.execute(update(alerts).where(alerts.c.pk == live.pk).values(ref=event.call))
            changed += 1
        elif not event.called and live is not None and live.ref == event.call:
            conn.execute(
                update(alerts).where(alerts.c.pk == live.pk)
                .values(state="resolved", resolved_at=utc(now), resolved_by="device")
            )  # fmt: skip
            changed += 1
    return changed


class StaffCalls:
    """The dashboard's side: live calls, acknowledge, done."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def live(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(alerts).where(alerts.c.rule == RULE, alerts.c.state != "resolved")
                .order_by(alerts.c.opened_at)
            ).all()  # fmt: skip
        return [dict(r._mapping) for r in rows]

    def acknowledge(self, alert_id: int, username: str, now: datetime) -> bool:
        with self.db.write() as conn:
            result = conn.execute(
                update(alerts)
                .where(alerts.c.pk == alert_id, alerts.c.rule == RULE, alerts.c.state == "open")
                .values(state="acknowledged", acknowledged_by=username, acknowledged_at=utc(now))
            )  # fmt: skip
            return bool(result.rowcount)

    def finish(self, alert_id: int, username: str, now: datetime) -> bool:
        with self.db.write() as conn:
            result = conn.execute(
                update(alerts)
                .where(alerts.c.pk == alert_id, alerts.c.rule == RULE,
                       alerts.c.state != "resolved")
                .values(state="resolved", resolved_at=utc(now), resolved_by=username)
            )  # fmt: skip
            return bool(result.rowcount)

    def pending(self) -> list[dict[str, Any]]:
        """Calls the relay still has work for: live ones, and resolved ones
        whose resolution is not yet published and notified."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(alerts).where(
                    alerts.c.rule == RULE,
                    or_(alerts.c.state != "resolved", alerts.c.notified != DONE),
                ).order_by(alerts.c.pk)
            ).all()  # fmt: skip
        return [dict(r._mapping) for r in rows]

    def mark(self, alert_id: int, notified: int) -> None:
        with self.db.write() as conn:
            conn.execute(update(alerts).where(alerts.c.pk == alert_id).values(notified=notified))


def device_state(row: Mapping[str, Any]) -> StaffCallState | None:
    """The retained message for a call's row (None: clear it)."""
    if row["state"] == "resolved" or not row.get("ref"):
        return None
    acknowledged = row["state"] == "acknowledged"
    at = row["acknowledged_at"] if acknowledged and row["acknowledged_at"] else row["opened_at"]
    return StaffCallState(call=row["ref"], state="acknowledged" if acknowledged else "open",
                          at=aware(at))  # fmt: skip


Publish = Callable[[str, bytes], None]


@dataclass
class RelayRound:
    """One pass over the pending calls: publish what changed, notify once.
    ``published`` remembers what each device was last sent (per process)."""

    calls: StaffCalls
    publish: Publish
    notifiers: Sequence[Notifier]
    published: dict[str, bytes]
    retry_at: dict[int, float]

    def run(self, now: float, online: bool = True) -> None:
        """``online``: the broker connection is up (devices are told only
        then; people are notified either way)."""
        rows = self.calls.pending()
        live_devices = {r["device"] for r in rows if r["state"] != "resolved"}
        for row in rows if online else ():
            state = device_state(row)
            if state is not None:
                self._send(row["device"], encode(state))
            elif row["device"] not in live_devices:
                self._send(row["device"], b"")
        for row in rows:
            if online or row["state"] != "resolved":
                # A resolution waits for the broker: the device must hear of it too.
                self._notify(row, now)

    def _send(self, device: str, payload: bytes) -> None:
        if self.published.get(device) != payload:
            self.publish(device, payload)
            self.published[device] = payload

    def _notify(self, row: Mapping[str, Any], now: float) -> None:
        resolved = row["state"] == "resolved"
        if now < self.retry_at.get(row["pk"], 0.0):
            return
        if resolved and row["notified"] == NEW:
            # Over before anyone was told (a call sent late, after the person
            # had left): the record stays in the table, nobody is paged.
            self.calls.mark(row["pk"], DONE)
            return
        if not resolved and row["notified"] != NEW:
            return
        at = aware(row["resolved_at"] if resolved else row["opened_at"])
        detail = row["detail"] if not resolved else f"resolved by {row['resolved_by'] or '?'}"
        transition = Transition(row["device"], RULE, not resolved, detail, at)
        for notifier in self.notifiers:
            try:
                notifier.send(transition)
            except NotifyError as exc:
                self.retry_at[row["pk"]] = now + RETRY_NOTIFY_SECONDS
                where = {"rule": RULE, "device": row["device"]}
                log.error("notification failed", extra={**where, "error": str(exc)})
                return
        self.calls.mark(row["pk"], DONE if resolved else OPEN_SENT)


class StaffCallRelay:
    """Runs :class:`RelayRound` on its own thread every ``interval`` seconds
    (and at once after :meth:`wake`); devices are told while connected to
    the broker, people are notified of new calls either way.

    ``client`` is central's paho client (:func:`central.mqtt.make_client`);
    ``connect`` starts it and ``disconnect`` stops it (the command line
    passes :func:`central.mqtt.start` and :func:`central.mqtt.stop`: ops
    does not read central's configuration itself)."""

    def __init__(
        self, db: Database, client: mqtt.Client, connect: Callable[[], None],
        disconnect: Callable[[], None], *, notifiers: Sequence[Notifier] = (),
        interval: float = 0.25,
    ) -> None:  # fmt: skip
        self.interval, self._connect, self._disconnect = interval, connect, disconnect
        self.client = client
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.round = RelayRound(StaffCalls(db), self._publish, notifiers, {}, {})
        self._connected = threading.Event()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="staff-calls", daemon=True)

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if not reason.is_failure:
            self.round.published.clear()  # a new session: say it all again
            self._connected.set()
            self._wake.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, _r: ReasonCode, _p: Any) -> None:
        self._connected.clear()

    def _publish(self, device: str, payload: bytes) -> None:
        self.client.publish(device_topic(device, "staffcall"), payload, qos=1, retain=True)

    def start(self) -> StaffCallRelay:
        self._connect()
        self._thread.start()
        return self

    def wake(self) -> None:
        """A call changed here (the dashboard): act now (any thread)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                continue
            try:
                self.round.run(time.monotonic(), online=self._connected.is_set())
            except Exception:  # the relay must survive a bad round: retried next time
                log.exception("staff call round failed")

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self._disconnect()
