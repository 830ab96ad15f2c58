"""Remote commands on the dashboard (TestClient, SQLite): the device page's
panel, the confirmation page, the fresh second factor for unlocks and
lockdowns (passkey made for this confirmation, or a new authenticator
code), refusals shown and audited, diagnostics and screenshots."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import select

from central.api.app import create_app
from central.commands import CommandService
from central.db.engine import Database
from central.db.tables import audit_log, device_commands
from central.ops.passkeys import PasskeyStore, RelyingParty
from central.ops.staff import StaffStore
from central.websec import WebOptions
from tests.harness.booking import Clock
from tests.harness.central_commands import register
from tests.harness.soft_authenticator import SoftAuthenticator
from tests.integration.test_dashboard import NOW, PASSWORD, form_csrf

PUBLIC = "http://ops.city.example"
RP = RelyingParty.from_public_url(PUBLIC)
UNLOCK = {"name": "door.unlock", "target": "door-1", "door": "main", "seconds": "10",
          "reason": "card reader jammed"}  # fmt: skip


@dataclass
class Office:
    client: TestClient
    db: Database
    clock: Clock
    secrets: dict[str, str]
    service: CommandService
    csrf: str = ""

    def sign_in(self, user: str = "op") -> None:
        page = self.client.get("/login")
        data = {"username": user, "password": PASSWORD, "csrf": form_csrf(page.text),
                "code": pyotp.TOTP(self.secrets[user]).at(self.clock.moment)}  # fmt: skip
        assert self.client.post("/login", data=data, follow_redirects=False).status_code == 303
        self.csrf = form_csrf(self.client.get("/devices/door-1").text)

    def post(self, path: str, **fields: str) -> tuple[int, str]:
        answer = self.client.post(path, data={"csrf": self.csrf, **fields},
                                  follow_redirects=False)  # fmt: skip
        return answer.status_code, html.unescape(answer.text)

    def fresh_code(self) -> str:
        self.clock.moment += timedelta(seconds=30)  # the next step: never the sign-in's
        return pyotp.TOTP(self.secrets["op"]).at(self.clock.moment)

    def commands(self) -> list[tuple[str, str]]:
        with self.db.read() as conn:
            rows = conn.execute(select(device_commands.c.name, device_commands.c.state)).all()
        return [(r.name, r.state) for r in rows]

    def audit(self, action: str) -> list[tuple[str, str]]:
        a = audit_log.c
        with self.db.read() as conn:
            rows = conn.execute(select(a.outcome, a.reason).where(a.action == action)
                                .order_by(a.pk)).all()  # fmt: skip
        return [(r.outcome, r.reason) for r in rows]


def make_office(tmp_path: Path, key: Ed25519PrivateKey | None) -> Iterator[Office]:
    db = Database(f"sqlite:///{tmp_path / 'central.db'}")
    clock = Clock(NOW)
    service = CommandService(db, key, max_unlock_seconds=60, now=clock)
    app = create_app(db, now=clock, code_key=lambda _: b"k" * 32, commands=service,
                     web=WebOptions(public_url=PUBLIC))  # fmt: skip
    secrets = {"op": StaffStore(db).create("op", PASSWORD, "operator"),
               "view": StaffStore(db).create("view", PASSWORD, "viewer")}  # fmt: skip
    register(db, "door-1", "hall", doors=("main", "side"))
    with TestClient(app, base_url=PUBLIC, headers={"Accept-Language": "en"}) as client:
        yield Office(client, db, clock, secrets, service)
    db.close()


@pytest.fixture
def office(tmp_path: Path) -> Iterator[Office]:
    yield from make_office(tmp_path, Ed25519PrivateKey.generate())


def test_dashboard_commands_relock_is_confirmed_then_queued(office: Office) -> None:
    office.sign_in()
    page = office.client.get("/devices/door-1").text
    assert 'id="commands"' in page and 'value="door.relock"' in page
    status, text = office.post("/commands/confirm", name="door.relock", target="door-1",
                               door="side")  # fmt: skip
    assert status == 200 and "Lock door side of door-1 now." in text
    assert office.commands() == []  # nothing before the confirmation
    status, _ = office.post("/commands/issue", name="door.relock", target="door-1", door="side")
    assert status == 303
    assert office.commands() == [("door.relock", "queued")]
    assert office.audit("command.issue") == [("ok", "")]


def test_dashboard_commands_unlock_needs_a_fresh_code(office: Office) -> None:
    office.sign_in()
    status, text = office.post("/commands/confirm", **UNLOCK)
    assert status == 200 and "Unlock door main of door-1 for 10 seconds." in text
    assert 'id="command-code-form"' in text
    assert office.post("/commands/issue", **UNLOCK)[0] == 403  # no factor at all
    assert office.post("/commands/issue", **UNLOCK, code="000000")[0] == 403
    sign_in_code = pyotp.TOTP(office.secrets["op"]).at(office.clock.moment)
    assert office.post("/commands/issue", **UNLOCK, code=sign_in_code)[0] == 403  # used up
    assert office.commands() == []
    assert office.post("/commands/issue", **UNLOCK, code=office.fresh_code())[0] == 303
    assert office.commands() == [("door.unlock", "queued")]
    assert office.audit("command.second_factor") == [
        ("refused", "missing"),
        ("refused", "wrong_code"),
        ("refused", "code_reused"),
    ]


def test_dashboard_commands_lockdown_with_a_passkey_made_for_the_confirmation(
    office: Office,
) -> None:
    assert RP is not None
    store, key = PasskeyStore(office.db, RP), SoftAuthenticator(RP.rp_id, RP.origin)
    token, options = store.registration_options("op", NOW)
    store.register("op", token, key.create(json.loads(options)), "office key", NOW)
    office.sign_in()
    fields = {"name": "door.lockdown", "target": "door-1", "door": "main",
              "reason": "window broken"}  # fmt: skip
    text = office.client.post("/commands/confirm", data={"csrf": office.csrf, **fields}).text
    form = re.search(r'id="command-passkey-form"[^>]*data-options="([^"]+)"', text)
    factor = re.search(r'name="factor_token" value="([^"]+)"', text)
    assert form and factor
    answer = key.get(json.loads(html.unescape(form.group(1))))
    # A sign-in challenge cannot confirm a command (nor the other way round).
    signin_token, signin_options = store.authentication_options("op", NOW)
    other = key.get(json.loads(signin_options))
    assert office.post("/commands/issue", **fields, factor_token=signin_token,
                       credential=other)[0] == 403  # fmt: skip
    status, _ = office.post("/commands/issue", **fields, factor_token=factor.group(1),
                            credential=answer)  # fmt: skip
    assert status == 303 and office.commands() == [("door.lockdown", "queued")]
    # The same assertion again: its challenge is used up.
    assert office.post("/commands/issue", **fields, factor_token=factor.group(1),
                       credential=answer)[0] == 403  # fmt: skip
    assert [o for o, _ in office.audit("command.second_factor")] == ["refused", "refused"]


def test_dashboard_commands_refusals_and_roles(office: Office) -> None:
    office.sign_in()
    status, text = office.post("/commands/confirm", **{**UNLOCK, "seconds": "300"})
    assert status == 409 and "at most 60 s" in text
    status, text = office.post("/commands/confirm", **{**UNLOCK, "door": "back"})
    assert status == 409 and "no door 'back'" in text
    assert [r for _, r in office.audit("command.issue")] == ["over_cap", "unknown_door"]
    office.client.post("/logout", data={"csrf": office.csrf})
    office.sign_in("view")
    assert 'id="commands"' not in office.client.get("/devices/door-1").text
    assert office.post("/commands/confirm", name="door.relock", target="door-1",
                       door="main")[0] == 403  # fmt: skip


def test_dashboard_commands_show_diagnostics_and_screenshots(office: Office) -> None:
    office.sign_in()
    diag = office.service.issue("door-1", "diagnostics.collect", {}, issuer="staff:op",
                                source="x")  # fmt: skip
    shot = office.service.issue("door-1", "screen.capture", {}, issuer="staff:op", source="x")
    office.service.store_file(diag, "application/json", b'{"versions":{"kiosk":"1.2"}}', "0")
    office.service.store_file(shot, "image/png", b"\x89PNG\r\n\x1a\nfake", "0")
    page = html.unescape(office.client.get(f"/commands/{diag}").text)
    assert '"kiosk": "1.2"' in page  # pretty-printed
    image = office.client.get(f"/commands/{shot}/screenshot.png")
    assert image.headers["content-type"] == "image/png"
    assert image.headers["cache-control"] == "no-store"
    assert office.client.get(f"/commands/{diag}/screenshot.png").status_code == 404


def test_dashboard_commands_not_configured_says_so(tmp_path: Path) -> None:
    for office in make_office(tmp_path, None):
        office.sign_in()
        assert 'id="commands-off"' in office.client.get("/devices/door-1").text
        status, _ = office.post("/commands/confirm", name="door.relock", target="door-1",
                                door="main")  # fmt: skip
        assert status == 503


def test_dashboard_commands_facility_lockdown_and_release_every_door(office: Office) -> None:
    register(office.db, "door-2", "hall")
    office.sign_in()
    page = office.client.get("/facilities/hall/commands").text
    assert 'id="command-facility"' in page
    fields = {"scope": "facility", "target": "hall", "name": "door.lockdown",
              "reason": "flooded corridor"}  # fmt: skip
    status, text = office.post("/commands/confirm", **fields)
    assert status == 200 and "Lock down every door of hall" in text
    assert office.post("/commands/issue", **fields)[0] == 403  # the fresh factor first
    assert office.post("/commands/issue", **fields, code=office.fresh_code())[0] == 303
    rows = office.service.listing(facility="hall")
    assert sorted((r["device"], r["name"], r["args"]["door"]) for r in rows) == [
        ("door-1", "door.lockdown", "*"), ("door-2", "door.lockdown", "*")]  # fmt: skip
    release = {"scope": "facility", "target": "hall", "name": "door.release"}
    assert office.post("/commands/issue", **release)[0] == 303  # no second factor needed
    assert len(office.service.listing(facility="hall")) == 2 + 2  # "*" on each device
    assert office.post("/commands/confirm", scope="facility", target="hall",
                       name="device.reboot")[0] == 404  # fmt: skip
