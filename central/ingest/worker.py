"""``python -m central ingest``: one ingest worker.

Run several (processes, machines): the events subscription is shared
(``$share/central/...``), so the broker splits batches between them. Each
message goes through three steps:

1. paho's thread (``_on_message``) only puts it on this worker's queue, bounded
   in messages and in payload bytes (:mod:`central.ingest.inbox`); when it is
   full, a QoS 1 message waits there, paho reads no further and the broker
   holds the rest (backpressure, nothing dropped); a QoS 0 health report is
   dropped (the next one replaces it). A payload over
   ``broker.max_packet_bytes`` (the broker should have refused it) is
   refused there and not queued;
2. the worker thread validates it with :func:`contracts.mqtt.decode`, stores
   up to ``ingest.commit_batch`` event batches in ONE transaction, and only
   after the commit publishes :class:`~contracts.mqtt.Ack` on
   ``devices/{d}/acks`` (the device then deletes those events);
3. the MQTT-level PUBACK is sent last (paho ``manual_ack``).

A payload that is malformed, oversized, of the wrong type, or published by
one device in another's name is logged and counted and never stops the
worker. Status (birth/will), health and resync requests are handled here too.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from central import mqtt as central_mqtt
from central.config import CentralConfig
from central.db.engine import Database
from central.errors import DatabaseError
from central.ingest.inbox import ByteBoundedQueue
from central.ingest.parse import Impersonation, parse_inbound
from central.ingest.store import IngestStore, QuarantinedEvent
from central.ops.staffcalls import apply_staff_call_events
from central.reservations.chunks import (
    MAX_CORRELATION_BYTES,
    OversizedReservation,
    payload_budget,
)
from central.reservations.hooks import queue_checkins
from central.reservations.store import ReservationStore
from contracts.mqtt import (
    SHARED_EVENTS_SUBSCRIPTION,
    TOPIC_ROOT,
    Ack,
    EventBatch,
    Health,
    ProtocolError,
    ReservationDelta,
    ResyncRequest,
    Status,
    device_topic,
    encode,
)
from contracts.reservations_hash import WindowHashes

log = logging.getLogger(__name__)

SUBSCRIPTIONS = [
    (SHARED_EVENTS_SUBSCRIPTION, 1),
    # Not shared: every worker keeps the registry, and gets the retained births.
    (f"{TOPIC_ROOT}/devices/+/status", 1),
    (f"$share/central/{TOPIC_ROOT}/devices/+/health", 0),
    (f"$share/central/{TOPIC_ROOT}/devices/+/requests", 1),
]
ANTI_ENTROPY_INTERVAL = 60.0
ACK_CHUNK = 1000


@dataclass(frozen=True)
class Inbound:
    topic: str
    payload: bytes
    mid: int
    qos: int
    properties: Properties | None
    # The size of a payload refused unread (over broker.max_packet_bytes); 0: none.
    oversized: int = 0


class IngestWorker:
    """One worker: a paho client, a bounded queue and the thread that owns the DB work."""

    def __init__(self, config: CentralConfig, db: Database) -> None:
        self.config = config
        self.worker_id = config.ingest.worker_id or f"{socket.gethostname()}-{os.getpid()}"
        webhook = config.booking_webhook is not None

        def hook(conn: Connection, rows: list[dict[str, Any]], now: datetime) -> int:
            # In the events' own transaction: a staff call opens its alert
            # exactly when its event is stored.
            changed = apply_staff_call_events(conn, rows, now)
            if webhook:  # check-ins of imported bookings go back
                changed += queue_checkins(conn, db.insert, rows, now)
            return changed

        self.store = IngestStore(db, self.worker_id, config.ingest.max_gap_ranges, hook)
        self.reservations = ReservationStore(
            db, config.reservations.changelog_keep_versions, config.reservations.max_delta_versions
        )
        self.counts: Counter[str] = Counter()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._queue: ByteBoundedQueue[Inbound] = ByteBoundedQueue(
            config.ingest.queue_size, config.ingest.queue_max_bytes
        )
        self._stop = threading.Event()
        self._run_stop = self._stop
        self._last_snapshot: dict[str, float] = {}
        self._hashes = WindowHashes()
        self.client = central_mqtt.make_client(
            config.broker, central_mqtt.client_id(f"ingest-{self.worker_id}"), manual_ack=True
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    # paho's thread: hand over only -------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the connection", extra={"reason": str(reason)})
            return
        self.connected.set()
        client.subscribe(SUBSCRIPTIONS)
        log.info("connected to the broker", extra={"worker": self.worker_id})

    def _on_subscribe(
        self, _c: Any, _u: Any, _mid: int, reasons: list[ReasonCode], _p: Any
    ) -> None:
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            log.error("subscriptions refused", extra={"reasons": refused})
            return
        self.subscribed.set()
        log.info("subscribed", extra={"worker": self.worker_id})

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        self.connected.clear()
        self.subscribed.clear()
        log.warning("disconnected from the broker", extra={"reason": str(reason)})

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        payload = bytes(message.payload)
        oversized = len(payload) if len(payload) > self.config.broker.max_packet_bytes else 0
        item = Inbound(message.topic, b"" if oversized else payload, message.mid, message.qos,
                       getattr(message, "properties", None), oversized)  # fmt: skip
        size = len(item.payload)
        if message.qos == 0:  # health: the latest value only, never waited for
            if not self._queue.put(item, size):
                self.counts["dropped_qos0_overload"] += 1
            return
        waiting = False
        while not self._queue.put(item, size, timeout=1.0):
            if not waiting:
                waiting = True
                self.counts["backpressure"] += 1
                log.warning(
                    "ingest queue full: further messages wait at the broker",
                    extra={"held_bytes": self._queue.held_bytes, "topic": message.topic},
                )
            if self._stopping():
                # Not acked: the broker or the device sends it again.
                return

    def _stopping(self) -> bool:
        return self._stop.is_set() or self._run_stop.is_set()

    # the worker's own thread --------------------------------------------------

    def run(self, stop: threading.Event | None = None) -> None:
        """Connect and process until ``stop`` (or :meth:`close`) is set."""
        self._run_stop = stop or self._stop
        if self.config.ingest.register_unknown_devices:
            log.warning(
                "ingest.register_unknown_devices is on: any fleet certificate can choose "
                "its facility (a demo setting, not for production)"
            )
        central_mqtt.start(self.client, self.config.broker)
        try:
            while not self._stopping():
                first = self._queue.get(timeout=0.2)
                if first is None:
                    continue
                held = [first, *self._drain()]
                try:
                    self._process([item for item, _ in held])
                finally:
                    for _, size in held:
                        self._queue.release(size)
        finally:
            central_mqtt.stop(self.client)

    def close(self) -> None:
        self._stop.set()

    def _drain(self) -> list[tuple[Inbound, int]]:
        items: list[tuple[Inbound, int]] = []
        while len(items) < self.config.ingest.commit_batch - 1:
            got = self._queue.get()
            if got is None:
                break
            items.append(got)
        return items

    def _process(self, items: list[Inbound]) -> None:
        # Where the worker's time goes, in microseconds (logged with the
        # counts when it stops; bench/ingest.py reports it): parse = decode and
        # validate every message, store = the events' transaction (content
        # checks, SQL, commit), ack = app-level acks and PUBACKs handed to paho.
        start = time.perf_counter()
        batches: list[tuple[Inbound, EventBatch]] = []
        for item in items:
            self.counts["received"] += 1
            batch = self._handle(item)
            if batch is not None:
                batches.append((item, batch))
        parsed = time.perf_counter()
        acks: dict[str, list[str]] = {}
        if batches:
            try:
                acks = self._store(batches)
            except Exception:  # a bug must not stop the worker: not acked, devices resend
                self.counts["internal_errors"] += 1
                log.exception("storing events failed", extra={"batches": len(batches)})
        stored = time.perf_counter()
        self._send_acks(acks)
        # MQTT PUBACKs last and in the order received (event batches: after
        # the commit and the app-level ack, or after giving up on the database).
        for item in items:
            self._mqtt_ack(item)
        done = time.perf_counter()
        self.counts["transactions"] += bool(batches)
        self.counts["us_parse"] += round((parsed - start) * 1e6)
        self.counts["us_store"] += round((stored - parsed) * 1e6)
        self.counts["us_ack"] += round((done - stored) * 1e6)

    def _handle(self, item: Inbound) -> EventBatch | None:
        """Handle one message; an event batch is returned for the shared commit."""
        if item.oversized:
            limit = self.config.broker.max_packet_bytes
            self._refuse("oversized", item, f"{item.oversized} bytes exceed {limit}")
            return None
        try:
            parsed = parse_inbound(item.topic, item.payload)
            message = parsed.message
            if isinstance(message, EventBatch):
                return message
            if isinstance(message, Status):
                self._status(parsed.device, message)
            elif isinstance(message, Health):
                self._health(parsed.device, message)
            elif isinstance(message, ResyncRequest):
                self._request(parsed.device, message, item)
        except Impersonation as exc:
            self._refuse("impersonation", item, str(exc))
        except ProtocolError as exc:
            self._refuse("malformed", item, str(exc))
        except (DatabaseError, SQLAlchemyError) as exc:
            self.counts["db_errors"] += 1
            log.error("database error", extra={"topic": item.topic, "error": str(exc)[:300]})
        except Exception:  # a bug must not stop the worker: log it, go on
            self.counts["internal_errors"] += 1
            log.exception("message handling failed", extra={"topic": item.topic})
        return None

    def _refuse(self, what: str, item: Inbound, reason: str) -> None:
        self.counts[what] += 1
        log.warning(
            "payload refused",
            extra={"refusal": what, "topic": item.topic, "bytes": len(item.payload),
                   "reason": reason[:300]},
        )  # fmt: skip

    def _store(self, batches: list[tuple[Inbound, EventBatch]]) -> dict[str, list[str]]:
        """Commit the batches' events; the ids to ack per device ({}: not stored)."""
        delay = 0.5
        for attempt in range(1, 4):
            try:
                outcome = self.store.store_batches([b for _, b in batches])
                break
            except DatabaseError as exc:
                self.counts["db_errors"] += 1
                log.error("events not stored (devices will resend)",
                          extra={"attempt": attempt, "error": str(exc)})  # fmt: skip
                if attempt == 3 or self._stop.wait(delay):
                    return {}
                delay *= 2
        self.counts["events_stored"] += outcome.stored
        self.counts["events_duplicate"] += outcome.duplicates
        self.counts["events_quarantined"] += outcome.quarantined
        for event in outcome.quarantined_events:
            _log_quarantined(event)
        for device, (first, last) in outcome.gaps_opened:
            self.counts["seq_gaps_opened"] += 1
            log.info("seq gap opened", extra={"device": device, "first": first, "last": last})
        return outcome.acks

    def _send_acks(self, acks: dict[str, list[str]]) -> None:
        # Committed: now the device may forget these events.
        for device, ids in acks.items():
            for i in range(0, len(ids), ACK_CHUNK):
                ack = Ack(ids=ids[i : i + ACK_CHUNK])
                self.client.publish(device_topic(device, "acks"), encode(ack), qos=1)
                self.counts["acks_sent"] += 1

    def _mqtt_ack(self, item: Inbound) -> None:
        if item.qos > 0:
            self.client.ack(item.mid, item.qos)

    def _status(self, device: str, status: Status) -> None:
        if self.store.record_status(device, status):
            self.counts["status_applied"] += 1
            log.info("device status", extra={"device": device, "state": status.state,
                                              "session": status.session})  # fmt: skip
        else:
            self.counts["status_stale"] += 1
            log.info("stale status ignored", extra={"device": device, "state": status.state,
                                                    "session": status.session})  # fmt: skip

    def _health(self, device: str, health: Health) -> None:
        self.store.record_health(device, health)
        self.counts["health"] += 1
        if health.reservation_version is None or health.reservation_hash is None:
            return
        facility = self.store.device_facility(device)
        if facility is None:
            return
        version, active = self.reservations.active_state(facility)
        if health.reservation_version == version and not self._hashes.same_content(
            facility, version, health.reservation_hash, active
        ):
            last = self._last_snapshot.get(device, 0.0)
            if time.monotonic() - last >= ANTI_ENTROPY_INTERVAL:
                self._last_snapshot[device] = time.monotonic()
                log.warning(
                    "reservation hash mismatch: sending a snapshot",
                    extra={"device": device, "facility": facility, "version": version},
                )
                self._send_snapshot(device, facility, device_topic(device, "reservations"), None)

    def _request(self, device: str, request: ResyncRequest, item: Inbound) -> None:
        facility = self.store.device_facility(device)
        if facility is None and self.config.ingest.register_unknown_devices:
            self.store.register_device(device, request.facility)
            facility = request.facility
        if facility is None:
            # Not provisioned: its certificate alone must not choose a facility.
            self._refuse(
                "unknown_device",
                item,
                f"{device} is not registered (central device add); asked for {request.facility!r}",
            )
            return
        if facility != request.facility:
            self._refuse(
                "wrong_facility",
                item,
                f"{device} is registered for {facility!r}, asked for {request.facility!r}",
            )
            return
        reply_topic = device_topic(device, "reservations")
        props = item.properties
        asked = getattr(props, "ResponseTopic", None) if props else None
        if asked not in (None, reply_topic):
            log.warning("response topic ignored", extra={"device": device, "asked": asked})
        correlation = getattr(props, "CorrelationData", None) if props else None
        if correlation is not None and len(correlation) > MAX_CORRELATION_BYTES:
            # Copied, it could push the answers over the broker's packet limit.
            log.warning("correlation data too long: not copied",
                        extra={"device": device, "bytes": len(correlation)})  # fmt: skip
            correlation = None
        self.counts["resync_requests"] += 1
        version, active = self.reservations.active_state(facility)
        hash_differs = request.active_hash is not None and not self._hashes.same_content(
            facility, version, request.active_hash, active
        )
        deltas = None
        budget = payload_budget(self.config.broker.max_packet_bytes)
        if not (request.from_version == version and hash_differs):
            deltas = self.reservations.deltas_since(facility, request.from_version, budget)
        if deltas is None or (not deltas and version == 0):
            self._send_snapshot(device, facility, reply_topic, correlation)
            return
        if not deltas:  # up to date: an empty delta says so
            deltas = self._up_to_date(facility, version)
        payloads = [encode(delta) for delta in deltas]
        if any(len(p) > budget for p in payloads):  # the store cuts by bytes: a safety net
            self._send_snapshot(device, facility, reply_topic, correlation)
            return
        self.counts["resync_deltas"] += 1
        for payload in payloads:
            self._publish(reply_topic, payload, correlation)

    def _up_to_date(self, facility: str, version: int) -> list[ReservationDelta]:
        return [ReservationDelta(facility=facility, prev_version=version, version=version,
                                 changes=[])]  # fmt: skip

    def _send_snapshot(
        self, device: str, facility: str, topic: str, correlation: bytes | None
    ) -> None:
        """The snapshot in chunks of at most ``reservations.snapshot_chunk_size``
        reservations and the payload budget of ``broker.max_packet_bytes``."""
        budget = payload_budget(self.config.broker.max_packet_bytes)
        try:
            snapshot = self.reservations.snapshot(
                facility, self.config.reservations.snapshot_chunk_size, budget
            )
        except OversizedReservation as exc:  # only with a broker.max_packet_bytes far too low
            self.counts["snapshots_unsendable"] += 1
            log.error("snapshot not sent: raise broker.max_packet_bytes", extra={
                "device": device, "facility": facility, "error": str(exc)})  # fmt: skip
            return
        self.counts["snapshots_sent"] += 1
        log.info("sending a reservation snapshot", extra={
            "device": device, "facility": facility, "version": snapshot.version,
            "reservations": snapshot.reservations, "chunks": len(snapshot.payloads),
            "bytes": sum(len(p) for p in snapshot.payloads)})  # fmt: skip
        for payload in snapshot.payloads:
            self._publish(topic, payload, correlation)

    def _publish(self, topic: str, payload: bytes, correlation: bytes | None) -> None:
        props = None
        if correlation is not None:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.CorrelationData = correlation
        self.client.publish(topic, payload, qos=1, properties=props)


def _log_quarantined(event: QuarantinedEvent) -> None:
    """One line per quarantined event: the envelope's facts and the reason,
    never the data (refused content may be personal data)."""
    log.warning(
        "event quarantined",
        extra={"device": event.device, "seq": event.seq, "event_id": event.event_id,
               "type": event.type, "reason": event.reason[:300]},
    )  # fmt: skip
