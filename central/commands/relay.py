"""The command relay (in ``central serve``): central's MQTT side of commands.

One thread of its own, like :class:`central.ops.staffcalls.StaffCallRelay`;
paho's callbacks only hand work over (a queue and a wake-up). Each round it

* applies what devices answered on ``devices/+/results`` (a result for
  another device than its topic's, or for an unknown id, is logged, counted
  and ignored: a device can only speak for itself);
* re-publishes a device's undelivered, unexpired commands when its status
  says ``online`` (the device drops an id it has seen);
* marks undelivered commands past their expiry ``expired`` (never sent after);
* publishes queued commands: QoS 1, never retained, MQTT v5 response topic
  ``devices/{d}/results``, the id as correlation data and a message expiry
  of the command's remaining lifetime (the broker drops it after that);
  ``sent`` once the broker acknowledged it (PUBACK).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from central.commands.service import CommandService, Outgoing
from contracts.commands import CommandResult
from contracts.mqtt import (
    TOPIC_ROOT,
    ProtocolError,
    Status,
    decode,
    device_topic,
    parse_device_topic,
)

log = logging.getLogger(__name__)

RESULTS = f"{TOPIC_ROOT}/devices/+/results"
STATUS = f"{TOPIC_ROOT}/devices/+/status"


def publish_properties(command_id: str, device: str, seconds_left: float) -> Properties:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ResponseTopic = device_topic(device, "results")
    props.CorrelationData = command_id.encode()
    props.MessageExpiryInterval = max(1, int(seconds_left))
    return props


class CommandRelay:
    """``client``: central's paho client (:func:`central.mqtt.make_client`);
    ``connect``/``disconnect`` start and stop it (the command line passes
    :func:`central.mqtt.start` and :func:`central.mqtt.stop`)."""

    def __init__(
        self, service: CommandService, client: mqtt.Client, connect: Callable[[], None],
        disconnect: Callable[[], None], *, interval: float = 0.5,
    ) -> None:  # fmt: skip
        self.service, self.client, self.interval = service, client, interval
        self._connect, self._disconnect = connect, disconnect
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        self.counts: Counter[str] = Counter()
        self._inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._in_flight: dict[int, str] = {}  # mid -> command id
        self._sending: set[str] = set()
        self._lock = threading.Lock()
        self._connected, self._wake, self._stop = (threading.Event(), threading.Event(),
                                                   threading.Event())  # fmt: skip
        self.subscribed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="command-relay", daemon=True)

    # -- paho's thread: hand over only ------------------------------------------

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            return
        self.client.subscribe([(RESULTS, 1), (STATUS, 1)])
        with self._lock:
            self._in_flight.clear()
            self._sending.clear()  # a new session: what was in flight is sent again
        self._connected.set()
        self.subscribed.set()
        self._wake.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, _r: ReasonCode, _p: Any) -> None:
        self._connected.clear()

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        self._inbox.put(("message", (message.topic, bytes(message.payload))))
        self._wake.set()

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
        with self._lock:
            command_id = self._in_flight.pop(mid, None)
        if command_id is not None:
            self._inbox.put(("puback", (command_id, not reason.is_failure)))
            self._wake.set()

    # -- the relay's thread -------------------------------------------------------

    def start(self) -> CommandRelay:
        self._connect()
        self._thread.start()
        return self

    def wake(self) -> None:
        """A command was issued: publish it now (any thread)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.round()
            except Exception:  # a bad round must not end the relay: retried next time
                log.exception("command relay round failed")

    def round(self) -> None:
        while True:
            try:
                kind, item = self._inbox.get_nowait()
            except queue.Empty:
                break
            if kind == "puback":
                self._acknowledged(*item)
            else:
                self._received(*item)
        self.service.expire_due()
        if self._connected.is_set():
            for outgoing in self.service.to_publish():
                self._publish(outgoing)

    def _acknowledged(self, command_id: str, ok: bool) -> None:
        with self._lock:
            self._sending.discard(command_id)
        if ok:
            self.service.mark_sent(command_id)
        else:
            self.counts["refused_by_broker"] += 1
            log.error("the broker refused a command", extra={"id": command_id})

    def _publish(self, outgoing: Outgoing) -> None:
        command_id, device = outgoing.id, outgoing.device
        with self._lock:
            if command_id in self._sending:
                return
            self._sending.add(command_id)
        left = (outgoing.expires_at - self.service.now()).total_seconds()
        props = publish_properties(command_id, device, left)
        info = self.client.publish(device_topic(device, "commands"), outgoing.payload, qos=1,
                                   retain=False, properties=props)  # fmt: skip
        with self._lock:
            if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                self._in_flight[info.mid] = command_id
            else:
                self._sending.discard(command_id)
        self.counts["published"] += 1
        log.info("command published", extra={"id": command_id, "device": device})

    def _received(self, topic: str, payload: bytes) -> None:
        try:
            device, kind = parse_device_topic(topic)
            if kind == "status":
                self._status(device, payload)
                return
            result = decode(CommandResult, payload)
        except ProtocolError as exc:
            self.counts["malformed"] += 1
            log.warning("command answer malformed", extra={"topic": topic, "error": str(exc)})
            return
        outcome = self.service.apply_result(device, result)
        self.counts[outcome] += 1
        if outcome in ("unknown", "wrong_device"):
            log.warning("command result ignored", extra={"device": device, "id": result.id,
                                                         "why": outcome})  # fmt: skip
        elif outcome == "applied":
            log.info(
                "command result",
                extra={
                    "device": device,
                    "id": result.id,
                    "state": result.state,
                    "code": result.code,
                },
            )

    def _status(self, device: str, payload: bytes) -> None:
        if not payload:
            return  # a cleared retained status
        if decode(Status, payload).state != "online":
            return
        for outgoing in self.service.to_publish(device=device, include_sent=True):
            with self._lock:
                self._sending.discard(outgoing.id)  # say it again: the device dedups by id
            self._publish(outgoing)
            self.counts["republished"] += 1

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self._disconnect()
