"""The device sync agent: the only owner of the device's MQTT connection.

``python -m sync run --config device.toml`` runs :class:`Agent`. One thread
(the agent loop, :meth:`Agent.run`) owns all state: the store, the outbox
cursor, the in-flight window, reservation sync. paho's network thread only
calls the ``_on_*`` callbacks, which put a tuple on the agent's inbox and
return; they take no lock of ours (paho may call ``on_publish`` before
``publish()`` returns, while it holds its own lock).

Each connection is a fresh paho client (``reconnect_on_failure=False``): the
agent reconnects itself with capped, jittered backoff, and a new connection
carries a new session counter in its birth and will and starts with an
empty paho queue (nothing is resent by paho; the outbox is the queue).

Events: published in ``seq`` order as :class:`~contracts.mqtt.EventBatch`
messages (at most ``sync.batch_size`` events and ~192 KiB each), QoS 1, with
at most ``sync.max_inflight_batches`` batches awaiting central's ack. An
event leaves the outbox only when an :class:`~contracts.mqtt.Ack` lists its
id. A batch not acked in time, and everything in flight at a disconnect, is
sent again from the oldest unconfirmed event (central is idempotent on the
event id, so this can duplicate deliveries, never stored events). "In time"
and the window adapt to central's measured ack round trip
(:class:`~sync.pacing.AckPacer`): never under ``sync.ack_timeout_seconds``,
longer and one batch at a time after a timeout, so a slow central is not
buried in resends.

Remote commands (``devices/{d}/commands``): :class:`~sync.commands.CommandDesk`
verifies and answers them on this thread, :class:`~sync.command_runner.CommandRunner`
runs the agent's own on a thread of its own; a finished ledger entry is
marked reported only when the broker acknowledged its result (PUBACK).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import secrets
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from contracts import mqtt as protocol
from contracts.mqtt import (
    Ack,
    ProtocolError,
    ReservationDelta,
    Status,
)
from sync.batches import MAX_BATCH_BYTES, backoff_delay, encode_batch, split_batches
from sync.command_runner import wire_commands
from sync.commands import Reply
from sync.config import DeviceConfig
from sync.errors import StoreError
from sync.health import HealthCollector, certificate_usable, software_versions
from sync.outbox import Event, Outbox
from sync.pacing import AckPacer
from sync.reservations import ReservationCache, ReservationSync, SnapshotError
from sync.snapshot_rows import decode_answer
from sync.staffcall import LINK_REFRESH_SECONDS, record_link, record_staff_call
from sync.store import Store, open_store

log = logging.getLogger(__name__)

SESSION_KEY = "agent.session"
INBOX_DRAIN = 500
# How long a restart of our own service waits for the broker to take its result.
DEFERRED_WAIT_SECONDS = 10.0


@dataclass
class _Batch:
    remaining: int
    deadline: float
    sent_at: float
    sent_before: bool  # a resend: its ack's round trip is not measured


class Agent:
    """See the module docstring. ``run()`` blocks until :meth:`stop`."""

    def __init__(self, config: DeviceConfig, *, store: Store | None = None) -> None:
        self.config = config
        self.device = config.device.id
        self._rng = random.Random()
        self.store = store or open_store(
            config.store.path,
            busy_timeout=config.store.busy_timeout_seconds,
            reserve_bytes=config.store.reserve_bytes,
        )
        self.outbox = Outbox(self.store)
        self.cache = ReservationCache(self.store, config.device.facility)
        self.reservations = ReservationSync(
            self.cache,
            resync_timeout=config.sync.resync_timeout_seconds,
            rng=self._rng,
        )
        self.health = HealthCollector(
            config.store.path, self.outbox, self.reservations, self._session, time.time()
        )
        self.counters: Counter[str] = Counter()
        self._inbox: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._stopping = threading.Event()
        self._client: mqtt.Client | None = None
        self._connected = False
        self._attempt = 0
        self._reconnect_at = 0.0
        self._connack_deadline = 0.0
        self._next_health = 0.0
        self._next_poll = 0.0
        self._next_link = 0.0
        self._cursor = 0
        # Pages after the cursor, read and encoded while the window waits for
        # central (not when its Ack arrives); dropped at a rewind or disconnect.
        self._ready: list[tuple[list[Event], bytes | None]] = []
        self._batches: dict[int, _Batch] = {}
        self._inflight: dict[str, int] = {}
        self._batch_no = 0
        self._pacer = AckPacer(config.sync.ack_timeout_seconds, config.sync.max_inflight_batches)
        self._highest_sent = 0  # seq: anything at or below it has been published before
        self._started = False
        self._topics = {
            k: protocol.device_topic(self.device, k) for k in protocol.DEVICE_TOPIC_KINDS
        }
        self._facility_topic = protocol.facility_reservations_topic(config.device.facility)
        self._setup_commands()

    def _setup_commands(self) -> None:
        self._health: dict[str, Any] | None = None
        self.commands, self.runner = wire_commands(
            self.config, self.outbox, self._topics["results"],
            inbox=self._inbox.put, health=lambda: self._health,
        )  # fmt: skip
        self._results: dict[int, str] = {}  # PUBACK awaited: mid -> command id
        self._deferred: dict[str, tuple[Callable[[], None], float]] = {}
        self._next_report = 0.0

    # ----- foreign-thread entry points (paho): hand over and return -----

    def _on_connect(
        self, client: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Properties | None
    ) -> None:
        self._inbox.put(("connack", client, reason.value, str(reason)))

    def _on_disconnect(
        self, client: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Properties | None
    ) -> None:
        self._inbox.put(("disconnected", client, str(reason)))

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        if len(message.payload) > self.config.broker.max_packet_bytes:
            # The broker should not have sent it: refuse it unread, hold nothing.
            self._inbox.put(("oversized", message.topic, len(message.payload)))
            return
        props = message.properties
        self._inbox.put(("message", message.topic, message.payload,
                         getattr(props, "ResponseTopic", None),
                         getattr(props, "CorrelationData", None)))  # fmt: skip

    def _on_publish(
        self, _c: Any, _u: Any, mid: int, reason: ReasonCode, _p: Properties | None
    ) -> None:
        if reason.is_failure:
            self._inbox.put(("refused", mid, reason.value, str(reason)))
        else:
            self._inbox.put(("published", _c, mid))

    def stop(self) -> None:
        """Ask the agent loop to finish (any thread, signal handlers too)."""
        self._stopping.set()
        self._inbox.put(("stop",))

    # ----- the agent loop -----

    def run(self) -> None:
        log.info("sync agent started", extra={"device": self.device, "session": self._session()})
        if self.config.broker.tls is not None and not certificate_usable(self.config.broker.tls):
            self.counters["certificate_invalid"] += 1
        self.runner.start()
        try:
            while not self._stopping.is_set():
                try:
                    if not self._started:
                        record_link(self.store, False, time.time())  # an earlier run's link
                        self._started = True
                    self._tick()
                    self._handle_inbox(self._wait_time())
                except StoreError as exc:
                    self._store_failed(exc)
        finally:
            self._shutdown()

    def _store_failed(self, exc: StoreError) -> None:
        # A full or failing disk: the store rolled back and its connection is
        # usable; go on (the outbox is unchanged) and try again shortly.
        self.counters["store_errors"] += 1
        log.error("store write failed; the agent goes on", extra={"error": str(exc)})
        self._stopping.wait(1.0)

    def _wait_time(self) -> float:
        now = time.monotonic()
        deadlines = [self._next_poll, self._next_health]
        if not self._connected:
            deadlines = [self._connack_deadline if self._client else self._reconnect_at]
        elif self._batches:
            deadlines.append(min(b.deadline for b in self._batches.values()))
        resync = self.reservations.next_deadline()
        if resync is not None and self._connected:
            deadlines.append(resync)
        return max(0.0, min(min(deadlines) - now, 1.0))

    def _handle_inbox(self, timeout: float) -> None:
        try:
            item = self._inbox.get(timeout=timeout)
        except queue.Empty:
            return
        for _ in range(INBOX_DRAIN):
            self._dispatch(item)
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return

    def _dispatch(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "message":
            self._handle_message(item[1], item[2], item[3], item[4])
        elif kind in ("published", "deferred", "finished"):
            self._command_item(item)
        elif kind == "oversized":
            self._reject(item[1], item[2], f"over broker.max_packet_bytes"
                         f" ({self.config.broker.max_packet_bytes})")  # fmt: skip
        elif kind in ("connack", "disconnected") and item[1] is not self._client:
            return  # from an earlier connection's client: already torn down
        elif kind == "connack":
            self._handle_connack(item[2], item[3])
        elif kind == "disconnected":
            self._handle_disconnect(item[2])
        elif kind == "refused":
            self.counters["publish_refused"] += 1
            log.error("broker refused a publish", extra={"mid": item[1], "reason": item[3]})

    def _tick(self) -> None:
        now = time.monotonic()
        self.commands.housekeeping(now)
        self._run_deferred(now)
        if not self._connected:
            if self._client is None and now >= self._reconnect_at:
                self._connect()
            elif self._client is not None and now >= self._connack_deadline:
                # TCP/TLS up but no CONNACK (a frozen broker): start over.
                self._handle_disconnect("no CONNACK in time")
            return
        if self._batches and min(b.deadline for b in self._batches.values()) <= now:
            self.counters["ack_timeouts"] += 1
            self._pacer.expired()
            log.warning(
                "no ack from central in time; resending from the oldest unconfirmed event",
                extra={"next_timeout_seconds": round(self._pacer.timeout, 1)},
            )
            self._rewind()
        if now >= self._next_poll:
            self._next_poll = now + self.config.sync.poll_interval_seconds
            self._fill_window()
        request = self.reservations.request_due()
        if request is not None:
            self._send_resync(request)
        if now >= self._next_health:
            self._next_health = now + self.config.sync.health_interval_seconds
            self._publish_health()
        if now >= self._next_link:
            self._next_link = now + LINK_REFRESH_SECONDS
            record_link(self.store, True, time.time())
        if now >= self._next_report:
            self._next_report = now + 1.0
            for reply in self.commands.due_reports(set(self._results.values())):
                self._publish_result(reply)

    # ----- connection -----

    def _session(self) -> int:
        return int(self.store.get_state(SESSION_KEY, "0") or 0)

    def _new_client(self, session: int) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.device,
            protocol=mqtt.MQTTv5,
            reconnect_on_failure=False,
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.max_inflight_messages_set(max(20, self.config.sync.max_inflight_batches + 4))
        tls = self.config.broker.tls
        if tls is not None:
            client.tls_set(
                ca_certs=str(tls.ca_file),
                certfile=str(tls.cert_file),
                keyfile=str(tls.key_file),
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        else:
            log.warning("broker.tls is not configured: connecting without TLS")
        will = protocol.encode(Status(state="offline", session=session))
        client.will_set(self._topics["status"], will, qos=1, retain=True)
        return client

    def _connect(self) -> None:
        session = self._session() + 1
        self.store.set_state(SESSION_KEY, str(session))
        client = self._new_client(session)
        broker = self.config.broker
        # MQTT v5 Maximum Packet Size: the broker never sends a bigger packet.
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.MaximumPacketSize = broker.max_packet_bytes
        try:
            client.connect(
                broker.host, broker.port, keepalive=broker.keepalive_seconds, properties=props
            )
        except (OSError, ssl.SSLError) as exc:
            self._schedule_reconnect(f"connect failed: {exc}")
            return
        client.loop_start()
        self._client = client
        self._connack_deadline = time.monotonic() + 2 * broker.keepalive_seconds

    def _schedule_reconnect(self, why: str) -> None:
        sync = self.config.sync
        delay = backoff_delay(
            self._attempt, sync.reconnect_min_seconds, sync.reconnect_max_seconds, self._rng
        )
        self._attempt += 1
        self.counters["connect_failures"] += 1
        self._reconnect_at = time.monotonic() + delay
        log.warning("broker unreachable", extra={"why": why, "retry_in_s": round(delay, 2)})

    def _handle_connack(self, reason: int, text: str) -> None:
        client = self._client
        if client is None:
            return
        if reason >= 0x80:
            self.counters["connect_refused"] += 1
            log.error("broker refused the connection", extra={"reason": text})
            return  # paho closes the socket; "disconnected" follows
        self._connected = True
        self._attempt = 0
        self.counters["connects"] += 1
        session = self._session()
        birth = Status(
            state="online", session=session, at=datetime.now(UTC), versions=software_versions()
        )
        client.publish(self._topics["status"], protocol.encode(birth), qos=1, retain=True)
        client.subscribe(
            [
                (self._topics["acks"], 1),
                (self._topics["reservations"], 1),
                (self._topics["staffcall"], 1),
                (self._topics["commands"], 1),
                (self._facility_topic, 1),
            ]
        )
        log.info("connected to broker", extra={"session": session})
        self.reservations.on_connected()
        self._rewind()
        self._next_health = 0.0
        self._next_link = 0.0  # the touchscreens learn of the connection at the next tick

    def _handle_disconnect(self, reason: str) -> None:
        client, self._client = self._client, None
        was_connected, self._connected = self._connected, False
        if client is not None:
            sock = client.socket()
            if isinstance(sock, socket.socket):  # ssl.SSLSocket included
                # Wakes paho's thread if it still waits on a silent broker.
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            client.loop_stop()
        self._batches.clear()
        self._inflight.clear()
        self._results.clear()  # not marked reported: sent again after reconnecting
        self._ready.clear()
        if was_connected:
            self.counters["disconnects"] += 1
            record_link(self.store, False, time.time())
        if not self._stopping.is_set():
            self._schedule_reconnect(f"disconnected: {reason}")

    # ----- events -----

    def _rewind(self) -> None:
        self._ready.clear()
        self._batches.clear()
        self._inflight.clear()
        self._cursor = 0
        self._fill_window()

    def _fill_window(self) -> None:
        while self._connected and len(self._batches) < self._pacer.window:
            page = self._ready.pop(0) if self._ready else self._read_page(self._cursor)
            if page is None:
                return
            events, payload = page
            if payload is not None:
                self._publish_batch(events, payload)
                continue
            for batch in split_batches(events):
                self._publish_batch(batch)

    def _read_page(self, after_seq: int) -> tuple[list[Event], bytes | None] | None:
        """The next ``batch_size`` events after ``after_seq`` and, nearly always,
        their payload (None: over MAX_BATCH_BYTES, to be split), or None."""
        events = self.outbox.pending(limit=self.config.sync.batch_size, after_seq=after_seq)
        if not events:
            return None
        # Encoded once, without split_batches measuring every event.
        payload = encode_batch(self.device, events)
        return events, payload if len(payload) <= MAX_BATCH_BYTES else None

    def _prepare(self) -> None:
        """Read and encode the pages that follow the window, while it is in flight."""
        while self._connected and len(self._ready) < self.config.sync.max_inflight_batches:
            page = self._read_page(self._ready[-1][0][-1].seq if self._ready else self._cursor)
            if page is None:
                return
            self._ready.append(page)

    def _publish_batch(self, events: list[Event], payload: bytes | None = None) -> None:
        assert self._client is not None
        self._batch_no += 1
        now = time.monotonic()
        resend = events[0].seq <= self._highest_sent
        self._batches[self._batch_no] = _Batch(len(events), now + self._pacer.timeout, now, resend)
        for event in events:
            self._inflight[event.id] = self._batch_no
        self._cursor = events[-1].seq
        self._highest_sent = max(self._highest_sent, self._cursor)
        # rc 4 (no connection) keeps the message in this client's queue, which
        # dies with it; never republish here: the rewind after reconnect does.
        if payload is None:
            payload = encode_batch(self.device, events)
        self._client.publish(self._topics["events"], payload, qos=1)
        self.counters["events_sent"] += len(events)

    def _handle_ack(self, payload: bytes) -> None:
        ack = protocol.decode(Ack, payload)
        now = time.monotonic()
        for event_id in ack.ids:
            number = self._inflight.pop(event_id, None)
            batch = self._batches.get(number) if number is not None else None
            if batch is not None:
                batch.remaining -= 1
                if batch.remaining <= 0:
                    del self._batches[number]  # type: ignore[arg-type]
                    self._pacer.acked(None if batch.sent_before else now - batch.sent_at)
        # The next batches (prepared while these were in flight) go out before
        # the durable delete, so its fsync and the next pages' read overlap
        # their trip to central (the acked events are behind the cursor; if
        # the agent dies before the delete they are resent, and central acks
        # duplicates again).
        self._fill_window()
        confirmed = self.outbox.confirm(ack.ids)
        self.counters["events_confirmed"] += confirmed
        self._prepare()

    # ----- incoming messages -----

    def _handle_message(
        self,
        topic: str,
        payload: bytes,
        response: str | None = None,
        correlation: bytes | None = None,
    ) -> None:
        try:
            if topic == self._topics["commands"]:
                for reply in self.commands.on_command(payload, response, correlation):
                    self._publish_result(reply)
            elif topic == self._topics["acks"]:
                self._handle_ack(payload)
            elif topic == self._facility_topic:
                delta = protocol.decode(ReservationDelta, payload)
                if self.reservations.on_live_delta(delta) == "foreign":
                    raise ProtocolError(f"delta for facility {delta.facility!r} on our topic")
            elif topic == self._topics["reservations"]:
                self._handle_answer(payload)
            elif topic == self._topics["staffcall"]:
                state = record_staff_call(self.store, payload)
                log.info("staff call state", extra={"state": state.state if state else "none"})
            else:
                raise ProtocolError(f"unexpected topic {topic!r}")
        except (ProtocolError, SnapshotError) as exc:
            self._reject(topic, len(payload), str(exc))
        except StoreError as exc:  # rolled back; an ack or answer comes again
            self.counters["store_errors"] += 1
            log.error("message not applied: store write failed", extra={"error": str(exc)})
        except Exception:  # a bug must not stop the agent: a retained message would crash-loop it
            self.counters["internal_errors"] += 1
            log.exception("message handling failed", extra={"topic": topic, "bytes": len(payload)})

    def _reject(self, topic: str, size: int, reason: str) -> None:
        self.counters["rejected_messages"] += 1
        log.warning("message rejected", extra={"topic": topic, "bytes": size, "reason": reason})

    def _handle_answer(self, payload: bytes) -> None:
        # A snapshot chunk is validated whole into rows (sync.reservations).
        if self.reservations.on_answer(decode_answer(payload)) == "foreign":
            raise ProtocolError("reservation answer for another facility")

    def _send_resync(self, request: protocol.ResyncRequest) -> None:
        assert self._client is not None
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = self._topics["reservations"]
        props.CorrelationData = secrets.token_hex(8).encode()
        self._client.publish(
            self._topics["requests"], protocol.encode(request), qos=1, properties=props
        )
        self.counters["resync_requests"] += 1
        log.info(
            "reservation resync requested",
            extra={"from_version": request.from_version, "hash": request.active_hash},
        )

    def _publish_health(self) -> None:
        assert self._client is not None
        health = self.health.collect()
        health = health.model_copy(update={"rejected_messages": self.counters["rejected_messages"]})
        self._health = health.model_dump(mode="json")
        self._client.publish(self._topics["health"], protocol.encode(health), qos=0)

    # ----- command results -----

    def _publish_result(self, reply: Reply) -> None:
        if self._client is None or not self._connected:
            return  # the ledger keeps it; reported after the next connection
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.CorrelationData = reply.correlation
        info = self._client.publish(self._topics["results"], reply.payload, qos=1, properties=props)
        if reply.report_id:
            self._results[info.mid] = reply.report_id

    def _command_item(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "finished":
            self._next_report = 0.0  # report it at the next tick
        elif kind == "deferred":
            self._deferred[item[1]] = (item[2], time.monotonic() + DEFERRED_WAIT_SECONDS)
        elif item[1] is self._client:  # published, by the current connection
            command_id = self._results.pop(item[2], None)
            if command_id is not None:
                self.commands.reported(command_id)
                self._run_deferred(time.monotonic(), command_id)

    def _run_deferred(self, now: float, reported: str = "") -> None:
        for command_id, (action, deadline) in list(self._deferred.items()):
            if command_id == reported or now >= deadline:
                del self._deferred[command_id]
                if command_id != reported:
                    log.warning("result not acknowledged in time; acting anyway",
                                extra={"command": command_id})  # fmt: skip
                action()

    # ----- shutdown -----

    def _shutdown(self) -> None:
        self.runner.stop()
        client, self._client = self._client, None
        if client is not None:
            if self._connected:
                bye = Status(state="offline", session=self._session(), at=datetime.now(UTC))
                info = client.publish(
                    self._topics["status"], protocol.encode(bye), qos=1, retain=True
                )
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(timeout=2)
                client.disconnect()
            client.loop_stop()
        if self._connected:
            try:
                record_link(self.store, False, time.time())
            except StoreError as exc:
                log.error("link state not recorded at stop", extra={"error": str(exc)})
        self._connected = False
        self.store.close()
        log.info("sync agent stopped", extra={"counters": dict(self.counters)})
