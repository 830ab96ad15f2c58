"""Alert notifications delivered to real local receivers (HTTP and SMTP)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest
from aiosmtpd.controller import Controller

from central.ops.alerts import Transition
from central.ops.notify import EmailNotifier, NotifyError, WebhookNotifier
from tests.harness.services import free_port, wait_until

OPENED = Transition("dev-a", "cpu_hot", True, "CPU at 82 °C", datetime(2026, 11, 28, 1, tzinfo=UTC))


class Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, Any], str]]] = []
    status: ClassVar[int] = 204

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((json.loads(body), self.headers.get("Authorization", "")))
        self.send_response(Receiver.status)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        return


@pytest.fixture
def webhook() -> Iterator[str]:
    Receiver.received, Receiver.status = [], 204
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_notify_webhook_posts_json(webhook: str) -> None:
    WebhookNotifier(webhook, bearer_token="t0ken").send(OPENED)
    body, auth = Receiver.received[0]
    assert body == {"kind": "alert.opened", "device": "dev-a", "rule": "cpu_hot",
                    "detail": "CPU at 82 °C", "at": "2026-11-28T01:00:00+00:00"}  # fmt: skip
    assert auth == "Bearer t0ken"


def test_notify_webhook_errors_are_typed(webhook: str) -> None:
    Receiver.status = 500
    with pytest.raises(NotifyError, match="HTTP 500"):
        WebhookNotifier(webhook).send(OPENED)
    with pytest.raises(NotifyError):
        WebhookNotifier(f"http://127.0.0.1:{free_port()}/", timeout_s=1).send(OPENED)


class Collector:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


def test_notify_email_reaches_smtp_receiver() -> None:
    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        notifier = EmailNotifier(
            "127.0.0.1", controller.port, "kiosk@city.example", ("ops@city.example",)
        )
        notifier.send(OPENED)
        wait_until(lambda: bool(collector.messages), 5, "the e-mail")
    finally:
        controller.stop()
    mail = message_from_bytes(collector.messages[0])
    assert mail["Subject"] == "[kiosk alert OPEN] dev-a: cpu_hot"
    body = mail.get_payload(decode=True)
    assert isinstance(body, bytes) and "CPU at 82" in body.decode()


def test_notify_email_unreachable_is_typed() -> None:
    with pytest.raises(NotifyError):
        EmailNotifier("127.0.0.1", free_port(), "a@b.c", ("d@e.f",), timeout_s=1).send(OPENED)
