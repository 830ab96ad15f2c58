"""Event batches on the wire and the agent's reconnect delay: pure helpers of
:mod:`sync.agent` (and of ``bench/drain.py``, which sends the same batches)."""

from __future__ import annotations

import json
import random

from contracts import mqtt as protocol
from sync.outbox import Event

# An EventBatch payload stays under this (the broker's packet limit is 264 KiB).
MAX_BATCH_BYTES = 192 * 1024


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Capped exponential backoff with jitter: in [d/2, d], d = min(cap, base * 2**attempt)."""
    ceiling = min(cap, base * (2 ** min(attempt, 30)))
    return rng.uniform(ceiling / 2, ceiling)


def encode_batch(device: str, events: list[Event]) -> bytes:
    """An :class:`~contracts.mqtt.EventBatch` payload, built without re-validating
    (the outbox already guarantees the envelope)."""
    body = {
        "v": protocol.PROTOCOL_VERSION,
        "device": device,
        "events": [e.to_wire() for e in events],
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def split_batches(events: list[Event], max_bytes: int = MAX_BATCH_BYTES) -> list[list[Event]]:
    """Cut ``events`` (seq order) into batches whose payloads stay under ``max_bytes``."""
    batches: list[list[Event]] = []
    current: list[Event] = []
    size = 64
    for event in events:
        cost = len(json.dumps(event.to_wire(), ensure_ascii=False).encode()) + 1
        if current and size + cost > max_bytes:
            batches.append(current)
            current, size = [], 64
        current.append(event)
        size += cost
    if current:
        batches.append(current)
    return batches
