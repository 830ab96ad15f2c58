"""Central's one audit log through the real app on a real database: staff
sign-in (every failure kind, also when the per-address limit answers 429),
sign-out, acknowledgements, staff-call answers, API writes and refusals,
token and staff commands, staff account and passkey actions, the admins'
page, CSV export and ``GET /api/audit``; append-only (triggers, SQLite and PostgreSQL); the
personal-data guard in front of it."""

from __future__ import annotations

import contextvars
import csv
import html
import io
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from central import audit
from central.api.app import create_app
from central.api.tokens import TokenStore
from central.audit import AuditFilter, Outcome, query, record_now
from central.audit.web import AuditRequests
from central.cli import main as central_main
from central.db.engine import Database, utc
from central.db.tables import alerts, audit_log
from central.ops.staff import StaffStore
from central.reservations import audit as reservations_audit
from central.websec import WebOptions
from tests.harness.keys import fixed_code_key
from tests.harness.soft_authenticator import SoftAuthenticator

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
SPOOFED = "203.0.113.9"  # an X-Forwarded-For from a peer that is no trusted proxy
LIMIT = 10  # sign-in attempts per address in the test app


@dataclass
class World:
    client: TestClient
    db: Database
    secrets: dict[str, str]
    clock: list[datetime]

    def rows(self, **where: str) -> list[audit.AuditEntry]:
        found = query.page(self.db, AuditFilter(), limit=1000)
        return [e for e in found if all(getattr(e, k) == v for k, v in where.items())]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    db = Database(f"sqlite:///{tmp_path / 'central.db'}")
    clock = [NOW]
    web = WebOptions(attempts_per_address=LIMIT)
    app = create_app(db, now=lambda: clock[0], code_key=fixed_code_key, web=web)
    staff = StaffStore(db)
    secrets = {name: staff.create(name, PASSWORD, role) for name, role in
               (("root", "admin"), ("op", "operator"), ("view", "viewer"))}  # fmt: skip
    with TestClient(app, base_url="http://testserver") as client:
        yield World(client, db, secrets, clock)
    db.close()


def sign_in(w: World, user: str, *, password: str = PASSWORD, code: str | None = None,
            at: datetime | None = None) -> int:  # fmt: skip
    page = w.client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    secret = w.secrets.get(user, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    data = {"username": user, "password": password, "csrf": csrf.group(1),
            "code": code or pyotp.TOTP(secret).at(at or w.clock[0])}  # fmt: skip
    response = w.client.post("/login", data=data, headers={"X-Forwarded-For": SPOOFED},
                             follow_redirects=False)  # fmt: skip
    return int(response.status_code)


def csrf_of(w: World) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', w.client.get("/alerts").text)
    assert found
    return found.group(1)


def test_audit_log_records_every_sign_in_outcome_also_past_the_address_limit(
    world: World,
) -> None:
    w = world
    assert sign_in(w, "op") == 303
    assert sign_in(w, "op") == 401  # the same code again: replay
    w.client.cookies.clear()
    assert sign_in(w, "view", code="000000") == 401
    assert sign_in(w, "ghost") == 401
    statuses = [sign_in(w, "root", password="wrong password!") for _ in range(5)]
    assert statuses == [401, 401, 401, 401, 403]  # the fifth failure locks
    assert sign_in(w, "root") == 403
    assert sign_in(w, "root") == 429  # the eleventh attempt from this address
    forged = w.client.post("/login", data={"username": "op", "password": "x", "code": "1",
                                           "csrf": "forged"})  # fmt: skip
    assert forged.status_code == 403

    got = [(e.actor, e.outcome, e.reason) for e in reversed(w.rows(action="staff.sign_in"))]
    assert got == [
        ("staff:op", "ok", ""), ("staff:op", "refused", "code_reused"),
        ("staff:view", "refused", "wrong_code"), ("anonymous", "refused", "unknown_user"),
        *[("staff:root", "refused", "wrong_password")] * 4, ("staff:root", "refused", "locked"),
        ("staff:root", "refused", "locked"), ("anonymous", "refused", "address_limit"),
        ("anonymous", "refused", "form_expired"),
    ]  # fmt: skip
    entries = w.rows(action="staff.sign_in")
    # where from: the connection's peer; a forged X-Forwarded-For is not believed
    assert {e.source for e in entries} == {"testclient"}
    assert all(e.at.tzinfo is not None for e in entries)
    # never what was typed: no password, no code, no unknown user name
    dumped = repr(entries)
    assert PASSWORD not in dumped and "wrong password!" not in dumped and "ghost" not in dumped


def test_audit_log_records_sign_out_acknowledgements_and_staff_call_answers(
    world: World,
) -> None:
    w = world
    with w.db.write() as conn:
        for rule in ("offline", "staff_requested"):
            row = {"device": "dev-1", "rule": rule, "detail": "", "state": "open",
                   "opened_at": utc(NOW), "notified": 0}  # fmt: skip
            conn.execute(insert(alerts).values(**row))
        ids = {r.rule: r.pk for r in conn.execute(select(alerts.c.rule, alerts.c.pk))}
    alert, call = ids["offline"], ids["staff_requested"]
    assert sign_in(w, "op") == 303
    csrf = csrf_of(w)
    for path in (f"/alerts/{alert}/ack", f"/alerts/{alert}/ack", f"/staffcalls/{call}/ack",
                 f"/staffcalls/{call}/done", f"/staffcalls/{call}/done"):  # fmt: skip
        assert w.client.post(path, data={"csrf": csrf}, follow_redirects=False).status_code == 303
    forged = w.client.post(f"/alerts/{alert}/ack", data={"csrf": "forged"})
    assert forged.status_code == 403
    assert w.client.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303

    got = [(e.action, e.subject, e.outcome, e.reason) for e in reversed(w.rows(actor="staff:op"))]
    assert got[1:] == [
        ("alert.acknowledge", f"alert:{alert}", "ok", ""),
        ("alert.acknowledge", f"alert:{alert}", "refused", "not_open"),
        ("staffcall.acknowledge", f"alert:{call}", "ok", ""),
        ("staffcall.done", f"alert:{call}", "ok", ""),
        ("staffcall.done", f"alert:{call}", "refused", "not_live"),
        ("dashboard.request", "form", "refused", "csrf"),
        ("staff.sign_out", "staff:op", "ok", ""),
    ]
    assert {e.source for e in w.rows(actor="staff:op")} == {"testclient"}


def test_audit_log_records_api_writes_and_refusals_never_the_token(world: World) -> None:
    w = world
    tokens = TokenStore(w.db)
    op_id, op_token = tokens.create("operator", "ops")
    reader_id, reader_token = tokens.create("reader", "read")
    body = {"facility": "gym", "door": "main", "starts_at": "2026-12-08T09:00:00+09:00",
            "ends_at": "2026-12-08T10:00:00+09:00", "credential_refs": ["ref-1"]}  # fmt: skip

    def post(token: str | None, payload: Mapping[str, object]) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return int(w.client.post("/api/reservations", json=payload, headers=headers).status_code)

    assert post(op_token, body) == 201
    assert post(None, body) == 401
    assert post("ck_not-a-token", body) == 401
    assert post(reader_token, body) == 403
    assert post(op_token, {**body, "ends_at": "2026-12-08T08:00:00+09:00"}) == 422
    stolen = w.client.get("/api/devices", headers={"Authorization": "Bearer ck_guess"})
    assert stolen.status_code == 401
    assert w.client.get("/api/devices", headers={"Authorization": f"Bearer {reader_token}"}
                        ).status_code == 200  # fmt: skip

    got = [(e.actor, e.action, e.subject, e.outcome, e.reason)
           for e in reversed(w.rows()) if e.action.startswith("api.")]  # fmt: skip
    assert got == [
        (f"token:{op_id}", "api.write", "/api/reservations", "ok", ""),
        ("anonymous", "api.write", "/api/reservations", "refused", "http_401"),
        ("anonymous", "api.write", "/api/reservations", "refused", "http_401"),
        (f"token:{reader_id}", "api.write", "/api/reservations", "refused", "http_403"),
        (f"token:{op_id}", "api.write", "/api/reservations", "refused", "http_422"),
        ("anonymous", "api.read", "/api/devices", "refused", "http_401"),
    ]  # a reader's successful read is not an entry
    assert {e.source for e in w.rows() if e.action.startswith("api.")} == {"testclient"}
    with w.db.read() as conn:
        everything = repr(conn.execute(text("SELECT * FROM audit_log")).all())
    for secret in (op_token, reader_token, "ck_not-a-token", "ck_guess"):
        assert secret not in everything


def test_audit_log_records_an_alert_acknowledged_through_the_api_as_its_token(
    world: World,
) -> None:
    w = world
    with w.db.write() as conn:
        row = {"device": "dev-1", "rule": "offline", "detail": "", "state": "open",
               "opened_at": utc(NOW), "notified": 0}  # fmt: skip
        conn.execute(insert(alerts).values(**row))
        alert = conn.execute(select(alerts.c.pk)).scalar_one()
    op_id, op_token = TokenStore(w.db).create("operator", "ops")
    headers = {"Authorization": f"Bearer {op_token}"}
    path = f"/api/alerts/{alert}/acknowledge"
    # "by" is the caller's label; the entry names the token that did it.
    assert w.client.post(path, json={"by": "someone else"}, headers=headers).status_code == 200
    assert w.client.post(path, json={}, headers=headers).status_code == 409
    got = [(e.actor, e.subject, e.outcome, e.reason)
           for e in reversed(w.rows()) if e.action == "alert.acknowledge"]  # fmt: skip
    assert got == [(f"token:{op_id}", f"alert:{alert}", "ok", ""),
                   (f"token:{op_id}", f"alert:{alert}", "refused", "not_open")]  # fmt: skip


def test_audit_log_page_export_and_api_are_for_admins_only(world: World) -> None:
    w = world
    _, reader_token = TokenStore(w.db).create("reader")
    admin_id, admin_token = TokenStore(w.db).create("admin")
    assert sign_in(w, "view", code="000000") == 401
    assert sign_in(w, "view") == 303
    for path in ("/audit-log", "/audit-log.csv"):
        assert w.client.get(path).status_code == 403
    assert "/audit-log" not in w.client.get("/alerts").text  # no link for a viewer
    with w.db.write() as conn:
        reservations_audit.record(conn, "token:t1", "booking.cancelled", "booking:b1")
    trail = w.client.get("/audit").text  # the reservation pages' trail, for any viewer
    assert (
        "booking.cancelled" in trail and "staff.sign_in" not in trail and "wrong_code" not in trail
    )
    refused = w.rows(actor="staff:view", outcome="refused", reason="role")
    assert [(e.action, e.subject) for e in refused] == [
        ("dashboard.request", "/audit-log.csv"), ("dashboard.request", "/audit-log")]  # fmt: skip
    assert w.client.get("/api/audit", headers={"Authorization": f"Bearer {reader_token}"}
                        ).status_code == 403  # fmt: skip
    assert w.client.get("/api/audit").status_code == 401

    w.client.cookies.clear()
    assert sign_in(w, "root") == 303
    page = w.client.get("/audit-log?action=staff.sign_in&outcome=refused&lang=en")
    assert page.status_code == 200
    assert "wrong_code" in page.text and "staff:view" in page.text and "audit.view" not in page.text
    assert w.client.get("/audit-log?since=yesterday").status_code == 422
    assert w.rows(actor="staff:root", reason="bad_filter")

    export = w.client.get("/audit-log.csv?action=staff.&source=testclient")
    assert export.status_code == 200
    assert export.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8"))))
    assert rows and {r["action"] for r in rows} == {"staff.sign_in"}
    assert {r["source"] for r in rows} == {"testclient"}
    [exported] = w.rows(action="audit.export", outcome="ok")
    assert exported.actor == "staff:root" and exported.source == "testclient"
    assert exported.detail == {"action": "staff.", "source": "testclient", "rows": len(rows)}

    api = w.client.get("/api/audit", params={"actor": "staff:view", "limit": 2},
                       headers={"Authorization": f"Bearer {admin_token}"})  # fmt: skip
    assert api.status_code == 200
    body = api.json()
    assert [i["actor"] for i in body["items"]] == ["staff:view"] * 2 and body["next"]
    older = w.client.get("/api/audit", params={"actor": "staff:view", "before": body["next"]},
                         headers={"Authorization": f"Bearer {admin_token}"}).json()  # fmt: skip
    assert all(i["id"] < int(body["next"]) for i in older["items"]) and older["items"]
    assert w.rows(actor=f"token:{admin_id}", action="audit.read")


def test_audit_log_guard_keeps_personal_data_out(world: World) -> None:
    w = world
    record_now(w.db, "cli", "test.email", "member:m1", detail={"email": "hanako@example.jp"})
    record_now(w.db, "cli", "test.note", "member:m1", detail={"note": "mail hanako@example.jp"})
    record_now(w.db, "cli", "test.number", "member:m1", detail={"ref": "1234 5678 9012"})
    record_now(w.db, "cli", "test.totp", "staff:op", detail={"totp_code": "123456"})
    record_now(w.db, "cli", "test.subject", "hanako@example.jp")
    with w.db.write() as conn:  # the reservations' wrapper goes through the same guard
        reservations_audit.record(conn, "staff:op", "member.updated", "member:m1",
                                  display_name="Hanako")  # fmt: skip
    record_now(w.db, "cli", "test.fine", "token:ab12", detail={"token_id": "ab12", "code_id": "c1"})
    details = {e.action: (e.subject, e.detail) for e in w.rows()}
    assert details["test.email"] == ("member:m1", {"redacted": "data.email"})
    assert details["test.note"] == ("member:m1", {"redacted": "detail.note"})
    assert details["test.number"] == ("member:m1", {"redacted": "data.ref"})
    assert details["test.totp"] == ("staff:op", {"redacted": "detail.totp_code"})
    assert details["test.subject"] == ("redacted", {})
    assert details["member.updated"] == ("member:m1", {"redacted": "data.display_name"})
    assert details["test.fine"] == ("token:ab12", {"token_id": "ab12", "code_id": "c1"})
    with w.db.read() as conn:
        stored = repr(conn.execute(text("SELECT * FROM audit_log")).all())
    assert "hanako" not in stored.lower() and "9012" not in stored and "123456" not in stored


def test_audit_log_records_token_and_staff_commands(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "central.toml"
    config.write_text(f'[database]\nurl = "{world.db.engine.url}"\n')

    def cli(*args: str) -> int:  # its own context: the command sets the audit source
        return contextvars.copy_context().run(central_main, [*args, "--config", str(config)])

    assert cli("token", "create", "--role", "reader") == 0
    [created] = world.rows(action="token.create")
    assert cli("token", "revoke", created.subject.removeprefix("token:")) == 0
    assert cli("token", "revoke", "nope") != 0
    monkeypatch.setattr("sys.stdin", io.StringIO("too short\n"))
    assert cli("staff", "create", "sato", "--role", "admin", "--password-stdin") == 1
    got = [(e.action, e.subject, e.source, e.outcome, e.reason) for e in reversed(world.rows())
           if e.action.startswith(("token.", "staff.create"))]  # fmt: skip
    assert got == [
        ("token.create", created.subject, "cli", "ok", ""),
        ("token.revoke", created.subject, "cli", "ok", ""),
        ("token.revoke", "token:nope", "cli", "refused", "unknown_token"),
        ("staff.create", "staff:sato", "cli", "refused", "invalid"),
    ]
    assert all(e.actor.startswith("cli") for e in world.rows(source="cli"))
    assert created.detail == {"role": "reader"}


def test_audit_log_staff_create_admin_from_the_command_line(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "central.toml"
    config.write_text(f'[database]\nurl = "{world.db.engine.url}"\n')
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    argv = ["staff", "create", "sato", "--role", "admin", "--password-stdin", "--config",
            str(config)]  # fmt: skip
    assert contextvars.copy_context().run(central_main, argv) == 0
    [made] = world.rows(action="staff.create")
    assert (made.subject, made.outcome, made.detail) == ("staff:sato", "ok", {"role": "admin"})
    assert "a long enough password" not in repr(world.rows())


def test_audit_log_is_append_only_on_sqlite_and_postgresql(central_db: Database) -> None:
    record_now(central_db, "cli", "test.kept", "x", source="cli", outcome=Outcome.OK)
    attacks = [update(audit_log).values(actor="someone else"), delete(audit_log)]
    if central_db.dialect == "postgresql":
        attacks.append(text("TRUNCATE audit_log"))  # type: ignore[arg-type]
    for attack in attacks:
        with pytest.raises(DBAPIError, match="append-only"), central_db.engine.begin() as conn:
            conn.execute(attack)
    [kept] = query.page(central_db, AuditFilter(action="test."))
    assert (kept.actor, kept.action, kept.source) == ("cli", "test.kept", "cli")
    # filters: time range is [since, until)
    assert query.count(central_db, AuditFilter(until=kept.at)) == 0
    assert query.count(central_db, AuditFilter(since=kept.at, until=kept.at + timedelta(1))) == 1


def test_audit_log_source_behind_a_trusted_proxy_is_the_forwarded_client(world: World) -> None:
    web = WebOptions(trusted_proxies=("10.0.0.1",))
    app = create_app(world.db, code_key=fixed_code_key, web=web)
    forwarded = {"X-Forwarded-For": "198.51.100.7, 10.0.0.1"}
    with TestClient(app, client=("10.0.0.1", 50000)) as proxied:
        assert proxied.post("/api/reservations", json={}, headers=forwarded).status_code == 401
    [refused] = world.rows(action="api.write")
    assert (refused.source, refused.reason) == ("198.51.100.7", "http_401")


def test_audit_log_records_no_address_of_a_booking_site_visitor(world: World) -> None:
    app = FastAPI()
    app.add_middleware(AuditRequests, db=world.db)

    @app.post("/booking/{page}")
    @app.post("/dashboard/{page}")
    def change(page: str) -> dict[str, str]:
        record_now(world.db, "member:m1" if page == "book" else "staff:op", f"test.{page}")
        return {}

    with TestClient(app, client=("198.51.100.8", 50000)) as client:
        assert client.post("/booking/book").status_code == 200
        assert client.post("/dashboard/ack").status_code == 200
    got = [(e.action, e.source) for e in reversed(world.rows()) if e.action.startswith("test.")]
    assert got == [
        ("test.book", ""), ("test.ack", "198.51.100.8")]  # fmt: skip


def test_audit_log_records_passkey_and_staff_admin_actions_with_source_and_outcome(
    world: World,
) -> None:
    """Through a trusted proxy: every entry's source is the forwarded client."""
    web = WebOptions(public_url="http://testserver", trusted_proxies=("10.0.0.1",))
    app = create_app(world.db, now=lambda: world.clock[0], code_key=fixed_code_key, web=web)
    device = SoftAuthenticator("testserver", "http://testserver")
    with TestClient(app, base_url="http://testserver", client=("10.0.0.1", 50000),
                    headers={"X-Forwarded-For": "198.51.100.7"}) as client:  # fmt: skip
        w = World(client, world.db, world.secrets, world.clock)
        login = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
        assert login
        code = pyotp.TOTP(w.secrets["root"]).at(NOW)
        signed = client.post("/login", data={"username": "root", "password": PASSWORD,
                                             "code": code, "csrf": login.group(1)})  # fmt: skip
        assert signed.status_code == 200
        csrf = csrf_of(w)
        made = client.post("/staff", data={"csrf": csrf, "username": "suzuki", "role": "viewer"})
        link = re.search(r"/enrol/([\w-]+)", made.text)
        password = re.search(r'id="issued-password">([^<]+)<', made.text)
        assert made.status_code == 200 and link and password
        assert client.post("/staff/root/disable", data={"csrf": csrf}).status_code == 409
        assert (
            client.post("/staff/op/role", data={"csrf": csrf, "role": "admin"}).status_code == 200
        )
        assert client.post("/staff/view/reset", data={"csrf": csrf}).status_code == 200
        for typed in ("wrong password!", PASSWORD):
            got = client.post("/account/passkeys/options", data={"csrf": csrf}).json()
            client.post("/account/passkeys", data={
                "csrf": csrf, "token": got["token"], "label": "desk key", "password": typed,
                "credential": device.create(got["options"])})  # fmt: skip
        client.post("/logout", data={"csrf": csrf})

        def passkey_step(origin: str | None = None) -> int:
            login = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
            assert login
            step = client.post("/login", data={"username": "root", "password": PASSWORD,
                                               "csrf": login.group(1)})  # fmt: skip
            options = re.search(r'data-options="([^"]+)"', step.text)
            assert options
            answer = device.get(json.loads(html.unescape(options.group(1))), origin=origin)
            done = client.post("/login/passkey", follow_redirects=False,
                               data={"csrf": login.group(1), "credential": answer})  # fmt: skip
            return int(done.status_code)

        assert passkey_step(origin="https://ops-testserver.evil.example") == 401  # phishing
        assert passkey_step() == 303
        # The code after the password: wrong; then the used-up step (expired).
        login = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
        assert login
        client.post("/login", data={"username": "root", "password": PASSWORD,
                                    "csrf": login.group(1)})  # fmt: skip
        for _ in range(2):
            answer = client.post("/login/code", data={"code": "000000", "csrf": login.group(1)})
            assert answer.status_code == 401

    got = [(e.actor, e.action, e.subject, e.outcome, e.reason) for e in reversed(w.rows())
           if e.action != "staff.sign_out"]  # fmt: skip
    assert got == [
        ("staff:root", "staff.sign_in", "staff:root", "ok", ""),
        ("staff:root", "staff.create", "staff:suzuki", "ok", ""),
        ("staff:root", "staff.disable", "staff:root", "refused", "own_account"),
        ("staff:root", "staff.role", "staff:op", "ok", ""),
        ("staff:root", "staff.second_factor.reset", "staff:view", "ok", ""),
        ("staff:root", "staff.passkey.register", "staff:root", "refused", "wrong_password"),
        ("staff:root", "staff.passkey.register", "staff:root", "ok", ""),
        ("staff:root", "staff.sign_in", "staff:root", "refused", "other_origin"),
        ("staff:root", "staff.sign_in", "staff:root", "ok", ""),
        ("staff:root", "staff.sign_in", "staff:root", "refused", "wrong_code"),
        ("anonymous", "staff.sign_in", "staff", "refused", "expired"),
    ]  # fmt: skip
    assert {e.source for e in w.rows()} == {"198.51.100.7"}
    factors = [e.detail.get("factor") for e in reversed(w.rows(action="staff.sign_in"))]
    assert factors == ["totp", "passkey", "passkey", "totp", "totp"]
    dumped = repr(w.rows())  # never the link, the initial password or a TOTP secret
    assert link.group(1) not in dumped and password.group(1) not in dumped
    assert "redacted" not in dumped and world.secrets["root"] not in dumped
