"""HttpsEnrolmentCentral against a real local HTTP server: answers parsed by
the contract, every refusal code raised as its own typed error, a 5xx
without a code and no server at all as CentralUnreachable."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from contracts.enrolment import ERROR_CODES, CardIn
from kiosk.enrolment.central import HttpsEnrolmentCentral
from kiosk.errors import ENROLMENT_REFUSALS, CentralUnreachable, EnrolmentRefused, TooManyAttempts

ANSWER: dict[str, tuple[int, object]] = {}
SEEN: list[tuple[str, str, object]] = []
REF = "m1-aaaaaaaa-bbbbbbbb-cccccccc-dddddddd"


class Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        SEEN.append((self.command, self.path, body))
        status, answer = ANSWER.get(self.command + " " + self.path, (500, {"detail": "boom"}))
        data = json.dumps(answer).encode() if answer is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_DELETE = _answer

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def central() -> Iterator[HttpsEnrolmentCentral]:
    ANSWER.clear()
    SEEN.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    client = HttpsEnrolmentCentral(f"http://127.0.0.1:{httpd.server_address[1]}", timeout=2)
    yield client
    client.close()
    httpd.shutdown()
    httpd.server_close()


def test_enrolment_client_redeems_enrols_and_cancels(central: HttpsEnrolmentCentral) -> None:
    ANSWER["POST /api/enrolment/tickets"] = (201, {
        "ticket": "t" * 20, "expires_at": "2026-11-28T10:05:00+09:00", "language": "en",
        "cards_enrolled": 1,
    })  # fmt: skip
    ANSWER["POST /api/enrolment/cards"] = (201, {"status": "enrolled", "card_id": "c-1"})
    ANSWER["DELETE /api/enrolment/tickets/" + "t" * 20] = (204, None)
    ticket = central.redeem("48291736")
    card = central.enrol(CardIn(ticket=ticket.ticket, credential_ref=REF, kind="member_card"))
    central.cancel(ticket.ticket)
    assert (ticket.language, card.status) == ("en", "enrolled")
    assert SEEN == [
        ("POST", "/api/enrolment/tickets", {"code": "48291736"}),
        ("POST", "/api/enrolment/cards",
         {"ticket": "t" * 20, "credential_ref": REF, "kind": "member_card", "label": ""}),
        ("DELETE", "/api/enrolment/tickets/" + "t" * 20, None),
    ]  # fmt: skip


@pytest.mark.parametrize("code", sorted(ERROR_CODES))
def test_enrolment_client_raises_the_typed_refusal(
    central: HttpsEnrolmentCentral, code: str
) -> None:
    body = {"error": code, "message": "m", "retry_after_seconds": 60}
    ANSWER["POST /api/enrolment/tickets"] = (ERROR_CODES[code], body)
    with pytest.raises(EnrolmentRefused) as err:
        central.redeem("48291736")
    assert type(err.value) is ENROLMENT_REFUSALS[code] and err.value.code == code
    if code == "too_many_attempts":
        assert isinstance(err.value, TooManyAttempts) and err.value.retry_after_seconds == 60


def test_enrolment_client_unreachable_without_a_refusal(central: HttpsEnrolmentCentral) -> None:
    with pytest.raises(CentralUnreachable):  # 500 without a contract body
        central.redeem("48291736")
    ANSWER["POST /api/enrolment/cards"] = (200, {"status": "maybe"})
    with pytest.raises(CentralUnreachable):  # an answer outside the contract
        central.enrol(CardIn(ticket="t" * 20, credential_ref=REF, kind="member_card"))
    nobody = HttpsEnrolmentCentral("https://127.0.0.1:9", timeout=1)
    with pytest.raises(CentralUnreachable):
        nobody.redeem("48291736")
