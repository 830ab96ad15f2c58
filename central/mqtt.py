"""The paho-mqtt client as central uses it: MQTT v5, clean start, mutual TLS
with the ``central`` identity (or a plain listener when no ``[broker.tls]``),
paho's own reconnect with a capped delay. Callbacks run on paho's thread; the
owners in :mod:`central.ingest.worker` and :mod:`central.reservations.publisher` only hand work
to their own threads from them."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from central.config import BrokerSection

log = logging.getLogger(__name__)


def client_id(role: str) -> str:
    """A client id unique per process: two central processes with the same id
    would keep disconnecting each other."""
    return f"central-{role}-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"[:64]


def make_client(broker: BrokerSection, client_id: str, *, manual_ack: bool = False) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    if broker.tls is not None:
        client.tls_set(
            ca_certs=str(broker.tls.ca_file),
            certfile=str(broker.tls.cert_file),
            keyfile=str(broker.tls.key_file),
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    client.reconnect_delay_set(1, int(broker.reconnect_max_seconds))
    client.on_connect_fail = lambda _c, _u: log.warning(
        "cannot connect to the broker (address, TLS files, certificate validity?); retrying",
        extra={"host": broker.host, "port": broker.port},
    )
    client.max_inflight_messages_set(200)
    return client


def start(client: mqtt.Client, broker: BrokerSection) -> None:
    """Connect in the background (retrying) and start paho's network thread.

    The CONNECT carries ``broker.max_packet_bytes`` as the MQTT v5 Maximum
    Packet Size: the broker then never sends central a bigger packet."""
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.MaximumPacketSize = broker.max_packet_bytes
    client.connect_async(
        broker.host, broker.port, broker.keepalive_seconds, clean_start=True, properties=props
    )
    client.loop_start()


def stop(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()
