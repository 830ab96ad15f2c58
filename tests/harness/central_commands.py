"""Remote commands in tests: central's signing key, a registered device with
doors, and a test device client that takes commands from the broker and
answers as the sync agent does (``delivered``, then a final state, on the
response topic with the correlation data central set)."""

from __future__ import annotations

import queue
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from central import mqtt as central_mqtt
from central.commands import CommandService
from central.commands.relay import CommandRelay
from central.config import load_config
from central.db.engine import Database, now_utc
from central.db.tables import rooms
from central.ingest.store import IngestStore
from contracts.commands import DeviceCommand, key_id, result_payload, verify
from contracts.mqtt import Status, device_topic, encode
from tests.harness.central import write_config
from tests.harness.mosquitto import Mosquitto
from tests.harness.mqtt import TestClient, connect
from tests.harness.services import wait_until


def write_signing_key(folder: Path) -> tuple[Path, Ed25519PrivateKey]:
    """Central's command key as ``commands.signing_key_file`` reads it."""
    key = Ed25519PrivateKey.generate()
    path = folder / "command-signing.pem"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return path, key


def unique_device(prefix: str = "door") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def register(db: Database, device: str, facility: str, doors: tuple[str, ...] = ()) -> None:
    """A provisioned device; ``doors`` become rooms of its facility."""
    IngestStore(db, "test").register_device(device, facility)
    with db.write() as conn:
        for door in doors:
            conn.execute(rooms.insert().values(
                id=f"{facility}-{door}", facility=facility, door=door, name=door, rules={},
                fee_per_slot_yen=0, created_at=now_utc(), updated_at=now_utc()))  # fmt: skip


@dataclass
class Received:
    command: DeviceCommand
    response_topic: str
    correlation: bytes
    retain: bool


@dataclass
class DeviceClient:
    """A device on the broker with its own fleet identity (CN = device id)."""

    device: str
    client: TestClient
    keys: dict[str, Any]
    commands: queue.Queue[Received] = field(default_factory=queue.Queue)

    def online(self, session: int = 1) -> None:
        """Subscribe to its commands, then say it is online (retained status)."""
        self.client.subscribe(device_topic(self.device, "commands"))
        status = Status(state="online", session=session, at=datetime.now(UTC))
        info = self.client.client.publish(device_topic(self.device, "status"), encode(status),
                                          qos=1, retain=True)  # fmt: skip
        info.wait_for_publish(5)

    def next_command(self, timeout: float = 10) -> Received:
        message = self.client.next_message(timeout)
        props = message.properties
        command = verify(bytes(message.payload), self.keys, device=self.device,
                         now=datetime.now(UTC))  # fmt: skip
        return Received(
            command,
            str(getattr(props, "ResponseTopic", "")),
            bytes(getattr(props, "CorrelationData", b"")),
            bool(message.retain),
        )

    def answer(self, got: Received, state: str, code: str = "ok", message: str = "",
               detail: dict[str, Any] | None = None, device: str = "") -> int:  # fmt: skip
        payload = result_payload(command_id=got.command.id, device=device or self.device,
                                 name=got.command.name, state=state,  # type: ignore[arg-type]
                                 code=code, message=message, at=datetime.now(UTC),
                                 detail=detail)  # fmt: skip
        return self.client.publish(got.response_topic, payload)

    def close(self) -> None:
        self.client.client.publish(device_topic(self.device, "status"), b"", qos=1, retain=True)
        self.client.close()


def start_relay(service: CommandService, broker: Mosquitto, folder: Path) -> CommandRelay:
    """Central's command relay for ``service`` on ``broker`` (the ``central``
    identity), subscribed before this returns; ``close()`` it."""
    config = load_config(write_config(folder, broker, "sqlite:///unused.db"))
    client = central_mqtt.make_client(config.broker, central_mqtt.client_id("test-commands"))
    relay = CommandRelay(service, client, lambda: central_mqtt.start(client, config.broker),
                         lambda: central_mqtt.stop(client), interval=0.05)  # fmt: skip
    service.wake = relay.wake
    relay.start()
    wait_until(relay.subscribed.is_set, 10, "the command relay to subscribe")
    return relay


def device_client(broker: Mosquitto, device: str, key: Ed25519PrivateKey) -> DeviceClient:
    client = connect(broker, broker.identity(device), client_id=device)
    return DeviceClient(device, client, {key_id(key.public_key()): key.public_key()})
