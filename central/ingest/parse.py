"""What central makes of one MQTT message from a device: pure, no I/O.

:func:`parse_inbound` turns a topic and payload into a :class:`Parsed` message
or raises :class:`~contracts.mqtt.ProtocolError` (:class:`Impersonation` for
a batch that names another device than its topic). Nothing else escapes it,
whatever the bytes: the worker logs and counts the refusal and goes on with
the rest of its batch.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.mqtt import (
    EventBatch,
    Health,
    ProtocolError,
    ResyncRequest,
    Status,
    decode,
    parse_device_topic,
)

Inbound = EventBatch | Status | Health | ResyncRequest


class Impersonation(ProtocolError):
    """A device published a batch in another device's name."""


@dataclass(frozen=True)
class Parsed:
    device: str
    kind: str
    # None: the device's retained status was cleared (an empty payload).
    message: Inbound | None


def parse_inbound(topic: str, payload: bytes) -> Parsed:
    device, kind = parse_device_topic(topic)
    message: Inbound | None
    if kind == "events":
        batch = decode(EventBatch, payload)
        if batch.device != device:
            raise Impersonation(f"batch names device {batch.device!r}, topic {device!r}")
        message = batch
    elif kind == "status":
        message = decode(Status, payload) if payload else None
    elif kind == "health":
        message = decode(Health, payload)
    elif kind == "requests":
        message = decode(ResyncRequest, payload)
    else:
        raise ProtocolError(f"central does not take {kind!r} messages")
    return Parsed(device, kind, message)
