"""Staff calls at central on a real database (SQLite and PostgreSQL): the
ingest transaction opens and resolves ``staff_requested`` alerts, the relay
publishes each device's retained call state and notifies once per change,
and the dashboard acknowledges and finishes calls with CSRF and roles."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from http.server import HTTPServer
from pathlib import Path
from typing import Any

import pyotp
import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient

from central.api.app import create_app
from central.cli import staff_call_relay
from central.config import load_config as load_central_config
from central.db.engine import Database
from central.ingest.store import IngestStore
from central.ops.alerts import Transition
from central.ops.dashboard.live import call_stream
from central.ops.notify import EmailNotifier, NotifyError, WebhookNotifier
from central.ops.service import AlertStore
from central.ops.staff import StaffStore
from central.ops.staffcalls import RelayRound, StaffCalls, apply_staff_call_events
from contracts.mqtt import EventBatch, EventEnvelope, StaffCallState, decode, device_topic
from tests.harness.central import write_config
from tests.harness.keys import fixed_code_key
from tests.harness.mosquitto import Mosquitto
from tests.harness.mqtt import connect
from tests.harness.services import free_port, wait_until
from tests.integration.test_notify import Collector, Receiver

CALL = "0f8fad5b-d9cb-469f-a165-70867728950e"
CALL2 = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
NOW = datetime.now(UTC).replace(microsecond=0)
PASSWORD = "correct horse battery"


class Notes:
    """A notifier that keeps what it was given (and can be made to fail)."""

    def __init__(self) -> None:
        self.sent: list[Transition] = []
        self.failing = False

    def send(self, transition: Transition) -> None:
        if self.failing:
            raise NotifyError("receiver down")
        self.sent.append(transition)


def event(seq: int, type_: str, data: dict[str, Any]) -> EventEnvelope:
    return EventEnvelope(
        id=f"00000000-0000-4000-8000-{seq:012d}", seq=seq, type=type_, at=NOW,
        clock_trusted=True, data=data,
    )  # fmt: skip


def ingest(db: Database, *events: EventEnvelope) -> None:
    store = IngestStore(db, "t", on_stored=apply_staff_call_events)
    store.store_batches([EventBatch(device="door-1", events=list(events))])


def called(seq: int, call: str = CALL) -> EventEnvelope:
    return event(seq, "kiosk.staff_called", {"call": call, "screen": "checkin", "door": "room-a"})


def ended(seq: int, call: str = CALL) -> EventEnvelope:
    return event(seq, "kiosk.staff_call_ended", {"call": call, "reason": "left"})


@pytest.fixture
def relay(central_db: Database) -> tuple[RelayRound, list[tuple[str, bytes]], Notes]:
    sent: list[tuple[str, bytes]] = []
    notes = Notes()
    relay = RelayRound(StaffCalls(central_db), lambda d, p: sent.append((d, p)), [notes], {}, {})
    return relay, sent, notes


def test_staffcalls_ingest_opens_once_and_device_end_resolves(central_db: Database) -> None:
    ingest(central_db, called(1))
    ingest(central_db, called(1))  # a duplicate delivery: nothing new
    [live] = StaffCalls(central_db).live()
    assert (live["device"], live["rule"], live["state"], live["ref"]) == (
        "door-1", "staff_requested", "open", CALL)  # fmt: skip
    assert live["detail"] == "screen: checkin, door: room-a"
    ingest(central_db, ended(2, CALL2))  # another call's end: this one stays
    assert StaffCalls(central_db).live()
    ingest(central_db, ended(3))
    assert not StaffCalls(central_db).live()
    [row] = AlertStore(central_db).listing()
    assert row["state"] == "resolved" and row["resolved_by"] == "device"


def test_staffcalls_relay_publishes_state_and_notifies_once(
    central_db: Database, relay: tuple[RelayRound, list[tuple[str, bytes]], Notes]
) -> None:
    round_, sent, notes = relay
    ingest(central_db, called(1))
    round_.run(0.0)
    round_.run(1.0)  # nothing changed: nothing sent again
    [(device, payload)] = sent
    state = decode(StaffCallState, payload)
    assert device == "door-1" and (state.call, state.state) == (CALL, "open")
    assert [(t.rule, t.opened) for t in notes.sent] == [("staff_requested", True)]
    calls = StaffCalls(central_db)
    pk = calls.live()[0]["pk"]
    assert calls.acknowledge(pk, "tanaka", NOW + timedelta(seconds=5))
    assert not calls.acknowledge(pk, "sato", NOW)  # once
    round_.run(2.0)
    assert decode(StaffCallState, sent[-1][1]).state == "acknowledged"
    assert b"tanaka" not in sent[-1][1]  # no names on the wire
    assert calls.finish(pk, "tanaka", NOW + timedelta(seconds=9))
    round_.run(3.0)
    round_.run(4.0)
    assert sent[-1] == ("door-1", b"") and len(sent) == 3  # retained state cleared once
    assert [t.opened for t in notes.sent] == [True, False]
    assert "tanaka" in notes.sent[-1].detail
    assert AlertStore(central_db).get(pk)["resolved_by"] == "tanaka"  # type: ignore[index]


def test_staffcalls_relay_retries_failed_notification_and_skips_stale_calls(
    central_db: Database, relay: tuple[RelayRound, list[tuple[str, bytes]], Notes]
) -> None:
    round_, sent, notes = relay
    notes.failing = True
    ingest(central_db, called(1))
    round_.run(0.0)
    assert sent and not notes.sent  # the device is told even when the receivers are down
    notes.failing = False
    round_.run(10.0)
    assert not notes.sent  # waits before trying again
    round_.run(31.0)
    assert [t.opened for t in notes.sent] == [True]
    # A call that arrives already over (sent late after the person left)
    # pages nobody, and leaves no retained state behind.
    ingest(central_db, ended(2), called(3, CALL2), ended(4, CALL2))
    round_.run(40.0)
    round_.run(41.0)
    assert [t.opened for t in notes.sent] == [True, False]
    assert sent[-1] == ("door-1", b"")
    assert StaffCalls(central_db).pending() == []


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[tuple[TestClient, Database, list[str]]]:
    db = Database(f"sqlite:///{tmp_path / 'central.db'}")
    woken: list[str] = []
    app = create_app(db, code_key=fixed_code_key, staff_calls_changed=lambda: woken.append("x"))
    staff = StaffStore(db)
    secrets = {"op": staff.create("op", PASSWORD, "operator"),
               "view": staff.create("view", PASSWORD, "viewer")}  # fmt: skip
    with TestClient(app, base_url="http://testserver") as client:
        yield client, db, [secrets["op"], secrets["view"]]
    db.close()


def sign_in(client: TestClient, user: str, secret: str) -> str:
    import re

    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token
    form = {"username": user, "password": PASSWORD, "code": pyotp.TOTP(secret).now(),
            "csrf": token.group(1)}  # fmt: skip
    assert client.post("/login", data=form, follow_redirects=False).status_code == 303
    found = re.search(r'data-csrf="([^"]+)"', client.get("/alerts?lang=en").text)
    assert found, "the staff call banner carries the session's CSRF token"
    return found.group(1)


def test_staffcalls_dashboard_acknowledge_and_done(
    dashboard: tuple[TestClient, Database, list[str]],
) -> None:
    client, db, (op_secret, view_secret) = dashboard
    ingest(db, called(1))
    pk = StaffCalls(db).live()[0]["pk"]
    csrf = sign_in(client, "view", view_secret)
    assert client.post(f"/staffcalls/{pk}/ack", data={"csrf": csrf}).status_code == 403
    client.post("/logout", data={"csrf": csrf})
    csrf = sign_in(client, "op", op_secret)
    page = client.get("/alerts?lang=ja").text
    assert f'id="alert-done-{pk}"' in page and "係員呼び出し" in page
    forged = client.post(f"/staffcalls/{pk}/ack", data={"csrf": "forged"})
    assert forged.status_code == 403
    answer = client.post(f"/staffcalls/{pk}/ack", data={"csrf": csrf}, follow_redirects=False)
    assert answer.status_code == 303
    assert StaffCalls(db).live()[0]["acknowledged_by"] == "op"
    client.post(f"/staffcalls/{pk}/done", data={"csrf": csrf}, follow_redirects=False)
    assert not StaffCalls(db).live()
    _, _, woken = dashboard
    assert len(woken) == 2


class FakeRequest:
    def __init__(self, disconnect_after: int) -> None:
        self.checks, self.limit = 0, disconnect_after

    async def is_disconnected(self) -> bool:
        self.checks += 1
        return self.checks > self.limit


def test_staffcalls_stream_sends_changes_only(central_db: Database) -> None:
    ingest(central_db, called(1))
    calls = StaffCalls(central_db)
    reads = 0

    def read() -> list[dict[str, Any]]:
        nonlocal reads
        reads += 1
        if reads == 3:
            calls.acknowledge(calls.live()[0]["pk"], "op", NOW)
        return calls.live()

    async def collect() -> list[str]:
        stream = call_stream(FakeRequest(4), read, 0.0, 60.0)  # type: ignore[arg-type]
        return [chunk async for chunk in stream]

    chunks = asyncio.run(collect())
    assert chunks[0].startswith("retry:")
    messages = [json.loads(c.split("data: ", 1)[1]) for c in chunks[1:]]
    assert [m["calls"][0]["state"] for m in messages] == ["open", "acknowledged"]
    assert messages[1]["calls"][0]["acknowledged_by"] == "op"
    assert set(messages[0]["calls"][0]) == {
        "id", "device", "detail", "state", "opened_at", "acknowledged_by"}  # fmt: skip


def test_staffcalls_serve_relay_keeps_retained_state_on_the_broker(
    tmp_path: Path, fresh_mosquitto: Mosquitto
) -> None:
    """The relay as ``central serve`` builds it, against mosquitto with the
    fleet ACL: a device that connects later still gets its call's state
    (retained), and nothing once it is resolved."""
    url = f"sqlite:///{tmp_path / 'central.db'}"
    config = load_central_config(write_config(tmp_path, fresh_mosquitto, url))
    db = Database(url)
    relay = staff_call_relay(config, db).start()
    topic = device_topic("door-1", "staffcall")
    try:
        ingest(db, called(1))
        calls = StaffCalls(db)
        calls.acknowledge(calls.live()[0]["pk"], "op", NOW)
        relay.wake()
        wait_until(lambda: calls.pending()[0]["notified"] == 1, 10, "the relay's round")
        device = connect(fresh_mosquitto, fresh_mosquitto.identity("door-1"))
        try:
            device.subscribe(topic)
            retained = device.next_message(10)
            assert decode(StaffCallState, bytes(retained.payload)).state == "acknowledged"
            calls.finish(calls.live()[0]["pk"], "op", NOW)
            relay.wake()
            assert device.next_message(10).payload == b""  # cleared
        finally:
            device.close()
        late = connect(fresh_mosquitto, fresh_mosquitto.identity("door-1"))
        try:
            late.subscribe(topic)
            with pytest.raises(queue.Empty):
                late.next_message(1.0)  # no retained state left behind
        finally:
            late.close()
    finally:
        relay.close()
        db.close()


@pytest.fixture
def hook_url() -> Iterator[str]:
    """test_notify's receiver on a free port."""
    Receiver.received, Receiver.status = [], 204
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_staffcalls_notify_real_webhook_and_mail_and_wait_for_broker_to_resolve(
    tmp_path: Path, hook_url: str
) -> None:
    """The relay's notifications through the real webhook and e-mail
    notifiers; without a broker connection a new call is still notified, its
    resolution waits until the device can be told too."""
    collector = Collector()
    smtp = Controller(collector, hostname="127.0.0.1", port=free_port())
    smtp.start()
    db = Database(f"sqlite:///{tmp_path / 'central.db'}")
    try:
        mail = EmailNotifier("127.0.0.1", smtp.port, "kiosk@city.example", ("ops@city.example",))
        sent: list[tuple[str, bytes]] = []
        round_ = RelayRound(StaffCalls(db), lambda d, p: sent.append((d, p)),
                            [WebhookNotifier(hook_url), mail], {}, {})  # fmt: skip
        ingest(db, called(1))
        round_.run(0.0, online=False)
        assert not sent  # no broker: devices wait...
        body, _ = Receiver.received[0]  # ...people do not
        assert (body["kind"], body["device"], body["rule"]) == (
            "alert.opened", "door-1", "staff_requested")  # fmt: skip
        assert body["detail"] == "screen: checkin, door: room-a"
        wait_until(lambda: bool(collector.messages), 5, "the e-mail")
        subject = message_from_bytes(collector.messages[0])["Subject"]
        assert subject == "[kiosk alert OPEN] door-1: staff_requested"
        StaffCalls(db).finish(StaffCalls(db).live()[0]["pk"], "sato", NOW)
        round_.run(1.0, online=False)
        assert len(Receiver.received) == 1  # the resolution waits for the broker
        round_.run(2.0, online=True)
        assert sent == [("door-1", b"")]
        assert Receiver.received[-1][0]["kind"] == "alert.resolved"
        assert "sato" in Receiver.received[-1][0]["detail"]
    finally:
        smtp.stop()
        db.close()
