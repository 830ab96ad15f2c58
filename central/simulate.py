"""A simulated fleet over MQTT, for the demo and for load.

``python -m central simulate --devices N`` publishes, for N made-up devices,
what real devices publish: a retained ``online`` birth (and ``offline`` for
the ones that are down), health figures every interval, and check-in events
in the device event format. Profiles are drawn from a seeded random
generator, so a run is repeatable: most devices are healthy; a few run hot,
some have an event backlog or a stale reservation cache, some are offline.

It publishes through one connection (the broker's plain listener or a
``central`` identity on the TLS listener), which is enough for ingest: the
device is named by the topic.
"""

from __future__ import annotations

import random
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contracts.mqtt import EventBatch, EventEnvelope, Health, Status, device_topic, encode

PROFILES = ("healthy", "hot", "backlog", "stale", "offline")
WEIGHTS = (0.7, 0.08, 0.08, 0.07, 0.07)


@dataclass
class SimDevice:
    id: str
    facility: str
    profile: str
    seq: int = 0
    uptime: float = 0.0

    def health(self, now: datetime, rng: random.Random) -> Health:
        hot, backlog = self.profile == "hot", self.profile == "backlog"
        cache_age = rng.randint(7200, 20000) if self.profile == "stale" else rng.randint(5, 90)
        return Health(
            at=now,
            session=1,
            uptime_s=self.uptime,
            cpu_temp_c=round(rng.uniform(78, 84) if hot else rng.uniform(42, 58), 1),
            throttled=0x50005 if hot else 0,
            load1=round(rng.uniform(0.05, 0.8), 2),
            mem_available_mb=round(rng.uniform(900, 1600)),
            disk_free_mb=round(rng.uniform(8000, 12000)),
            disk_read_only=False,
            store_bytes=rng.randint(200_000, 900_000),
            outbox_depth=rng.randint(800, 2000) if backlog else rng.randint(0, 3),
            outbox_oldest_age_s=float(rng.randint(1800, 7200) if backlog else 0),
            reservation_version=120,
            reservation_age_s=float(cache_age),
            clock_synchronised=True,
            reader_present=True,
            lock_ok=True,
            versions={"kiosk": "0.1.0"},
        )

    def events(self, now: datetime, rng: random.Random) -> EventBatch | None:
        if rng.random() > 0.3:
            return None
        self.seq += 1
        granted = rng.random() < 0.9
        event = EventEnvelope(
            id=str(uuid.uuid4()),
            seq=self.seq,
            type="checkin.granted" if granted else "checkin.denied",
            at=now,
            clock_trusted=True,
            data={"door": "room-a", "reason": "reservation" if granted else "not_registered"},
        )
        return EventBatch(device=self.id, events=[event])


def make_fleet(count: int, seed: int = 7, facilities: int = 10) -> list[SimDevice]:
    rng = random.Random(seed)
    return [
        SimDevice(
            f"sim-{i:04d}", f"facility-{i % facilities:02d}", rng.choices(PROFILES, WEIGHTS)[0]
        )
        for i in range(count)
    ]


class FleetSimulator:
    def __init__(
        self,
        host: str,
        port: int,
        devices: list[SimDevice],
        *,
        tls: tuple[Path, Path, Path] | None = None,
        seed: int = 7,
    ) -> None:
        self.devices = devices
        self.rng = random.Random(seed)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"simulator-{seed}",
                                  protocol=mqtt.MQTTv5)  # fmt: skip
        if tls is not None:
            ca, cert, key = tls
            self.client.tls_set(ca_certs=str(ca), certfile=str(cert), keyfile=str(key),
                                tls_version=ssl.PROTOCOL_TLS_CLIENT)  # fmt: skip
        self.client.max_queued_messages_set(0)
        self.client.connect(host, port)
        self.client.loop_start()
        self.published = 0

    def announce(self) -> None:
        """Retained births (and the last will of the devices that are down)."""
        for d in self.devices:
            down = d.profile == "offline"
            status = (
                Status(state="offline", session=1) if down else Status(state="online", session=1)
            )
            self._publish(device_topic(d.id, "status"), encode(status), 1, True)

    def step(self, now: datetime | None = None) -> None:
        """One round: health for every online device and some events."""
        moment = now or datetime.now(UTC)
        for d in self.devices:
            if d.profile == "offline":
                continue
            d.uptime += 1
            self._publish(
                device_topic(d.id, "health"), encode(d.health(moment, self.rng)), 0, False
            )
            batch = d.events(moment, self.rng)
            if batch is not None:
                self._publish(device_topic(d.id, "events"), encode(batch), 1, False)

    def run(self, interval: float, rounds: int | None, stop: threading.Event | None = None) -> None:
        self.announce()
        done = 0
        stop = stop or threading.Event()
        while not stop.is_set() and (rounds is None or done < rounds):
            started = time.monotonic()
            self.step()
            done += 1
            stop.wait(max(0.0, interval - (time.monotonic() - started)))

    def _publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        self.client.publish(topic, payload, qos=qos, retain=retain)
        self.published += 1

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
