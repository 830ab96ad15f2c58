"""Remote commands in tests: central's command key, signed commands, and a
central-side MQTT client that publishes them as central does (QoS 1, the
device's results topic as MQTT v5 response topic, the command id as
correlation data) and collects the device's results."""

from __future__ import annotations

import queue
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from contracts.commands import CommandResult, sign
from contracts.mqtt import device_topic
from tests.harness.mosquitto import Mosquitto
from tests.harness.mqtt import TestClient, connect
from tests.harness.services import ServiceError


def write_public_key(key: Ed25519PrivateKey, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return path


def signed(
    key: Ed25519PrivateKey,
    name: str,
    args: dict[str, Any] | None = None,
    *,
    device: str = "dev-a",
    lifetime: timedelta = timedelta(minutes=5),
    issued_at: datetime | None = None,
    command_id: str | None = None,
) -> tuple[str, bytes]:
    """A command signed as central signs it: its id and payload."""
    cid = command_id or str(uuid.uuid4())
    payload = sign(
        key, command_id=cid, device=device, name=name, args=args or {},
        issued_by="staff:tester", issued_at=issued_at or datetime.now(UTC), lifetime=lifetime,
    )  # fmt: skip
    return cid, payload


@dataclass
class Received:
    result: CommandResult
    correlation: bytes | None


@dataclass
class CentralCommands:
    """Central's side for one device: send commands, collect results."""

    client: TestClient
    device: str = "dev-a"
    seen: list[Received] = field(default_factory=list)

    @classmethod
    def connect(
        cls, broker: Mosquitto, device: str = "dev-a", *, persistent: bool = False
    ) -> CentralCommands:
        """``persistent``: a session the broker keeps (results sent while this
        client is away are delivered when it comes back), as central's."""
        identity = broker.identity("central")
        if persistent:
            client = connect(broker, identity, client_id="central-commands", session_expiry=600)
        else:
            client = connect(broker, identity)
        client.subscribe(device_topic(device, "results"))
        return cls(client, device)

    def send(self, payload: bytes, correlation: bytes | None, response_topic: str = "") -> None:
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = response_topic or device_topic(self.device, "results")
        if correlation is not None:
            props.CorrelationData = correlation
        info = self.client.client.publish(
            device_topic(self.device, "commands"), payload, qos=1, properties=props
        )
        info.wait_for_publish(timeout=5)

    def result(self, command_id: str, state: str, timeout: float = 20) -> Received:
        """The first result of ``command_id`` in ``state`` (waiting for it)."""
        found = self.find(command_id, state)
        while found is None:
            try:
                message = self.client.messages.get(timeout=timeout)
            except queue.Empty:
                have = [(r.result.state, r.result.code) for r in self.of(command_id)]
                raise ServiceError(f"no {state} result for {command_id}; have {have}") from None
            corr = getattr(message.properties, "CorrelationData", None)
            self.seen.append(Received(CommandResult.model_validate_json(message.payload), corr))
            found = self.find(command_id, state)
        return found

    def find(self, command_id: str, state: str) -> Received | None:
        return next((r for r in self.of(command_id) if r.result.state == state), None)

    def of(self, command_id: str) -> list[Received]:
        return [r for r in self.seen if r.result.id == command_id]

    def close(self) -> None:
        self.client.close()


@dataclass
class Upload:
    path: str
    content_type: str
    body: bytes
    peer: str  # the client certificate's CN


class AttachmentServer:
    """A small HTTPS server with mutual TLS standing in for central's device
    listener: it takes ``POST`` bodies and answers 201 (or ``answer``)."""

    def __init__(self, broker: Mosquitto, root: Path) -> None:
        from deploy import pki

        root.mkdir(parents=True, exist_ok=True)
        cert, key = root / "listener.pem", root / "listener.key"
        pki.issue(broker.ca, "localhost", server_names=["localhost"], client=False).write(cert, key)
        self.uploads: list[Upload] = []
        self.answer: tuple[int, bytes] = (201, b'{"ok": true}')
        self.scripted: list[tuple[int, bytes]] = []  # answered first, in order
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.load_verify_locations(broker.ca_path)
        context.verify_mode = ssl.CERT_REQUIRED
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                sock = self.connection
                peer = sock.getpeercert() if isinstance(sock, ssl.SSLSocket) else None
                subject = (peer or {}).get("subject", ())
                names = [pair for rdn in subject for pair in rdn if isinstance(pair, tuple)]
                cn = next((str(v) for k, v in names if k == "commonName"), "")
                server.uploads.append(
                    Upload(self.path, self.headers.get("Content-Type", ""), body, cn)
                )
                status, answer = server.scripted.pop(0) if server.scripted else server.answer
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://localhost:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
