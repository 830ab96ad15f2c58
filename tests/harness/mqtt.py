"""Small paho-mqtt helpers for tests: connect (plain or mutual TLS, MQTT v5),
wait for CONNACK, collect messages and PUBACK reason codes."""

from __future__ import annotations

import queue
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from tests.harness.mosquitto import ClientIdentity, Mosquitto
from tests.harness.services import ServiceError


@dataclass
class TestClient:
    __test__ = False  # a harness, not a test class for pytest to collect

    client: mqtt.Client
    messages: queue.Queue[mqtt.MQTTMessage] = field(default_factory=queue.Queue)
    puback: dict[int, int] = field(default_factory=dict)
    suback: dict[int, list[int]] = field(default_factory=dict)
    connected: threading.Event = field(default_factory=threading.Event)
    connack_reason: int | None = None
    _acked: threading.Condition = field(default_factory=threading.Condition)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, timeout: float = 5) -> int:
        """Publish and return the broker's PUBACK reason code (QoS 1)."""
        info = self.client.publish(topic, payload, qos=qos)
        with self._acked:
            if not self._acked.wait_for(lambda: info.mid in self.puback, timeout):
                raise ServiceError(f"no PUBACK for {topic} within {timeout} s")
            return self.puback.pop(info.mid)

    def subscribe(self, topic: str, qos: int = 1, timeout: float = 5) -> list[int]:
        """Subscribe and wait for the SUBACK, so that a message published
        next is certain to be routed to this client; return its reason codes."""
        _result, mid = self.client.subscribe(topic, qos=qos)
        assert mid is not None
        with self._acked:
            if not self._acked.wait_for(lambda: mid in self.suback, timeout):
                raise ServiceError(f"no SUBACK for {topic} within {timeout} s")
            return self.suback.pop(mid)

    def next_message(self, timeout: float = 5) -> mqtt.MQTTMessage:
        return self.messages.get(timeout=timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def connect(
    broker: Mosquitto,
    identity: ClientIdentity | None = None,
    client_id: str = "",
    timeout: float = 10,
    session_expiry: int = 0,
) -> TestClient:
    """Connect over the TLS listener with ``identity``, else the plain one.
    ``session_expiry`` > 0: resume the session of ``client_id`` (the broker
    keeps QoS 1 messages for it while it is away, restarts included)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    tc = TestClient(client)

    def on_connect(_c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Properties | None) -> None:
        tc.connack_reason = reason.value
        if not reason.is_failure:
            tc.connected.set()

    def on_message(_c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        tc.messages.put(message)

    def on_publish(_c: Any, _u: Any, mid: int, reason: ReasonCode, _p: Properties | None) -> None:
        with tc._acked:
            tc.puback[mid] = reason.value
            tc._acked.notify_all()

    def on_subscribe(_c: Any, _u: Any, mid: int, reasons: list[ReasonCode], _p: Any) -> None:
        with tc._acked:
            tc.suback[mid] = [reason.value for reason in reasons]
            tc._acked.notify_all()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.on_publish = on_publish
    if identity is not None:
        client.tls_set(
            ca_certs=str(identity.ca),
            certfile=str(identity.cert),
            keyfile=str(identity.key),
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
        port = broker.tls_port
    else:
        port = broker.plain_port
    props = None
    if session_expiry > 0:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = session_expiry
    client.connect(
        "127.0.0.1" if identity is None else "localhost",
        port,
        clean_start=session_expiry <= 0,
        properties=props,
    )
    client.loop_start()
    if not tc.connected.wait(timeout):
        client.loop_stop()
        raise ServiceError(f"no successful CONNACK (reason {tc.connack_reason})")
    return tc
