"""HttpsCentral against a real local HTTP server: answers parsed by the
contract, refusals mapped to their code, outages to CentralUnreachable."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from contracts.issuance import SessionIn
from kiosk.errors import CentralRefused, CentralUnreachable
from kiosk.issuance.central import HttpsCentral

ANSWERS: dict[str, tuple[int, object]] = {}


class Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        status, body = ANSWERS.get(self.path, (500, {"detail": "boom"}))
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_issuance_central_client_parses_and_maps_refusals(server: str) -> None:
    ANSWERS.clear()
    ANSWERS["/api/issuance/challenges"] = (
        200, {"challenge_id": "c1", "challenge": "ab" * 32, "expires_at": "2030-01-01T00:00:00Z"},
    )  # fmt: skip
    ANSWERS["/api/issuance/sessions"] = (
        403, {"error": "outside_hours", "message": "closed", "opens_at": "2030-01-02T00:00:00Z"},
    )  # fmt: skip
    ANSWERS["/api/issuance/sessions/s1"] = (204, None)
    central = HttpsCentral(server, timeout=2)
    assert central.challenge().challenge_id == "c1"
    with pytest.raises(CentralRefused) as refused:
        central.open_session(SessionIn(challenge_id="c1", certificate="00", signature="00"))
    assert refused.value.code == "outside_hours" and refused.value.opens_at is not None
    central.close_session("s1")
    with pytest.raises(CentralUnreachable):  # 500
        central.catalogue()
    central.close()


def test_issuance_central_client_unreachable_when_nobody_listens() -> None:
    central = HttpsCentral("https://127.0.0.1:9", timeout=1)
    with pytest.raises(CentralUnreachable):
        central.challenge()
    central.close()
