"""Staff accounts through the dashboard (FastAPI's test client, real SQLite):
the admin's create / disable / reset / role changes with their refusals and
audit entries, the one-time enrolment link, and the two-step sign-in
(password, then passkey or authenticator code)."""

from __future__ import annotations

import contextvars
import html
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from central.api.app import create_app
from central.cli import main as cli_main
from central.db.engine import Database
from central.db.tables import audit_log
from central.ops.staff import StaffError, StaffSession, StaffStore
from central.ops.staff_admin import StaffAdmin
from central.websec import WebOptions
from tests.harness.keys import fixed_code_key
from tests.harness.soft_authenticator import SoftAuthenticator

PASSWORD = "correct horse battery"
NOW = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[TestClient, Database, dict[str, str]]]:
    db = Database(f"sqlite:///{tmp_path / 'central.db'}")
    web = WebOptions(public_url="http://testserver")
    app = create_app(db, now=lambda: NOW, code_key=fixed_code_key, web=web)
    staff = StaffStore(db)
    secrets = {name: staff.create(name, PASSWORD, role)
               for name, role in (("boss", "admin"), ("op", "operator"))}  # fmt: skip
    with TestClient(app, base_url="http://testserver") as client:
        client.cookies.set("kiosk_lang", "en")
        yield client, db, secrets
    db.close()


def form_csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def sign_in(client: TestClient, user: str, secret: str, *, at: datetime = NOW) -> str:
    csrf = form_csrf(client.get("/login").text)
    form = {"username": user, "password": PASSWORD, "code": pyotp.TOTP(secret).at(at),
            "csrf": csrf}  # fmt: skip
    assert client.post("/login", data=form, follow_redirects=False).status_code == 303
    return form_csrf(client.get("/account").text)


def audit(db: Database) -> list[tuple[str, str, str]]:
    """(actor, action, subject) of the account changes and their refusals
    (not sign-ins, sign-outs and refused dashboard requests)."""
    return [(a, b, c) for a, b, c, _, _ in entries(db)]


def entries(db: Database) -> list[tuple[str, str, str, str, str]]:
    """The same with outcome and reason."""
    with db.read() as conn:
        rows = conn.execute(select(audit_log).order_by(audit_log.c.pk)).all()
    unseen = ("staff.sign_in", "staff.sign_out", "dashboard.request")
    return [(r.actor, r.action, r.subject, r.outcome, r.reason) for r in rows
            if r.action not in unseen]  # fmt: skip


def test_staff_admin_creates_account_and_it_enrols_with_the_link(
    site: tuple[TestClient, Database, dict[str, str]],
) -> None:
    client, db, secrets = site
    csrf = sign_in(client, "boss", secrets["boss"])
    page = client.post("/staff", data={"csrf": csrf, "username": "suzuki", "role": "viewer"})
    assert page.status_code == 200
    password = re.search(r'id="issued-password">([^<]+)<', page.text).group(1)  # type: ignore[union-attr]
    link = re.search(r'id="issued-link">http://testserver(/enrol/[^<]+)<', page.text).group(1)  # type: ignore[union-attr]
    assert ("staff:boss", "staff.create", "staff:suzuki") in audit(db)
    client.post("/logout", data={"csrf": csrf})

    # No second factor yet: the password alone is not enough.
    login = form_csrf(client.get("/login").text)
    refused = client.post("/login", data={"username": "suzuki", "password": password,
                                          "csrf": login})  # fmt: skip
    assert refused.status_code == 403 and "enrolment link" in refused.text
    enrol_csrf = form_csrf(client.get(link).text)
    wrong = client.post(link, data={"username": "suzuki", "password": "wrong password!",
                                    "csrf": enrol_csrf})  # fmt: skip
    assert wrong.status_code in (401, 403)
    done = client.post(link, data={"username": "suzuki", "password": password,
                                   "csrf": enrol_csrf})  # fmt: skip
    assert done.status_code == 200 and 'id="enrol-secret"' in done.text
    assert client.get("/account").status_code == 200  # signed in
    assert client.get(link).status_code == 404  # used up
    assert ("staff:suzuki", "staff.enrol", "staff:suzuki") in audit(db)


def test_staff_non_admin_gets_403_and_forged_csrf_is_refused(
    site: tuple[TestClient, Database, dict[str, str]],
) -> None:
    client, db, secrets = site
    csrf = sign_in(client, "op", secrets["op"])
    assert client.get("/staff", follow_redirects=False).status_code == 403
    attack = client.post("/staff/boss/disable", data={"csrf": csrf})
    assert attack.status_code == 403
    client.post("/logout", data={"csrf": csrf})
    sign_in(client, "boss", secrets["boss"], at=NOW)
    forged = client.post("/staff/op/disable", data={"csrf": "forged"})
    assert forged.status_code == 403
    assert not [a for a in audit(db) if a[1] == "staff.disable"]


def test_staff_last_admin_and_self_are_protected(
    site: tuple[TestClient, Database, dict[str, str]],
) -> None:
    client, db, secrets = site
    csrf = sign_in(client, "boss", secrets["boss"])
    for path, data in (("/staff/boss/disable", {}), ("/staff/boss/role", {"role": "viewer"})):
        refused = client.post(path, data={"csrf": csrf, **data})
        assert refused.status_code == 409 and "your own account" in refused.text
    # With another admin, demoting one is fine.
    assert client.post("/staff/op/role", data={"csrf": csrf, "role": "admin"}).status_code == 200
    assert client.post("/staff/op/role", data={"csrf": csrf, "role": "viewer"}).status_code == 200
    assert ("staff:boss", "staff.role", "staff:op") in audit(db)
    refused = [(a[1], a[4]) for a in entries(db) if a[3] == "refused"]
    assert refused == [("staff.disable", "own_account"), ("staff.role", "own_account")]
    # Two admins; one is disabled: the other (the last enabled one) cannot be demoted.
    StaffStore(db).create("second", PASSWORD, "admin")
    admin = StaffAdmin(db)
    admin.set_disabled(StaffSession("boss", "admin", "x", NOW), "second", True)
    with pytest.raises(StaffError, match="last enabled admin"):
        admin.set_role(StaffSession("second", "admin", "x", NOW), "boss", "viewer")


def test_staff_disable_ends_sessions_and_reset_needs_enrolment(
    site: tuple[TestClient, Database, dict[str, str]],
) -> None:
    client, db, secrets = site
    with TestClient(client.app, base_url="http://testserver") as other:
        other.cookies.set("kiosk_lang", "en")
        sign_in(other, "op", secrets["op"])
        csrf = sign_in(client, "boss", secrets["boss"])
        assert client.post("/staff/op/disable", data={"csrf": csrf}).status_code == 200
        assert other.get("/account", follow_redirects=False).status_code == 303  # signed out
        login = form_csrf(other.get("/login").text)
        later = pyotp.TOTP(secrets["op"]).at(NOW.timestamp() + 60)
        disabled = other.post("/login", data={"username": "op", "password": PASSWORD,
                                              "code": later, "csrf": login})  # fmt: skip
        assert disabled.status_code in (401, 403)
        assert client.post("/staff/op/enable", data={"csrf": csrf}).status_code == 200
        reset = client.post("/staff/op/reset", data={"csrf": csrf})
        assert reset.status_code == 200 and 'id="issued-link"' in reset.text
        assert 'id="issued-password"' not in reset.text
    assert not StaffStore(db).has_totp("op")
    actions = [a[1] for a in audit(db)]
    assert actions[-3:] == ["staff.disable", "staff.enable", "staff.second_factor.reset"]


def test_staff_two_step_sign_in_with_code_after_password(
    site: tuple[TestClient, Database, dict[str, str]],
) -> None:
    client, _db, secrets = site
    login = form_csrf(client.get("/login").text)
    step = client.post("/login", data={"username": "op", "password": PASSWORD, "csrf": login})
    assert step.status_code == 200 and 'action="/login/code"' in step.text
    pending = client.cookies.get("kiosk_signin_step")
    assert pending
    code = pyotp.TOTP(secrets["op"]).at(NOW)
    done = client.post("/login/code", data={"code": code, "csrf": login}, follow_redirects=False)
    assert done.status_code == 303
    login = form_csrf(client.get("/login").text)
    client.cookies.set("kiosk_signin_step", pending, domain="testserver.local", path="/login")
    replay = client.post("/login/code", data={"code": code, "csrf": login})
    assert replay.status_code == 401 and "expired" in replay.text  # the step was used up


def test_staff_account_page_adds_and_removes_passkey_and_switches_app(
    site: tuple[TestClient, Database, dict[str, str]],
) -> None:
    client, db, secrets = site
    csrf = sign_in(client, "op", secrets["op"])
    device = SoftAuthenticator("testserver", "http://testserver")
    got = client.post("/account/passkeys/options", data={"csrf": csrf}).json()
    assert got["options"]["authenticatorSelection"]["userVerification"] == "required"
    # A stolen session cookie (no password) cannot plant a lasting passkey.
    attacker = SoftAuthenticator("testserver", "http://testserver")
    stolen = client.post("/account/passkeys", data={
        "csrf": csrf, "token": got["token"], "label": "attacker", "password": "guess guess guess",
        "credential": attacker.create(got["options"])})  # fmt: skip
    assert stolen.status_code == 403 and "attacker" not in stolen.text
    got = client.post("/account/passkeys/options", data={"csrf": csrf}).json()
    added = client.post("/account/passkeys", data={
        "csrf": csrf, "token": got["token"], "label": "desk key", "password": PASSWORD,
        "credential": device.create(got["options"])})  # fmt: skip
    assert added.status_code == 200 and "desk key" in added.text
    forged = client.post("/account/passkeys/options", data={"csrf": "forged"})
    assert forged.status_code == 403

    # The authenticator app is switched only with a code of the new one.
    page = client.post("/account/totp", data={"csrf": csrf, "password": PASSWORD}).text
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)  # type: ignore[union-attr]
    token = re.search(r'name="token" value="([^"]+)"', page.split("totp-secret")[1]).group(1)  # type: ignore[union-attr]
    wrong = client.post("/account/totp/confirm", data={"csrf": csrf, "token": token,
                                                       "code": "000000"})  # fmt: skip
    assert wrong.status_code == 400
    assert StaffStore(db).has_totp("op")  # the old app still works
    page = client.post("/account/totp", data={"csrf": csrf, "password": PASSWORD}).text
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)  # type: ignore[union-attr]
    token = re.search(r'name="token" value="([^"]+)"', page.split("totp-secret")[1]).group(1)  # type: ignore[union-attr]
    switched = client.post("/account/totp/confirm", data={
        "csrf": csrf, "token": token, "code": pyotp.TOTP(secret).at(NOW)})  # fmt: skip
    assert switched.status_code == 200 and "switched" in switched.text
    client.post("/logout", data={"csrf": csrf})

    # Password + passkey through the forms the page script posts.
    login = form_csrf(client.get("/login").text)
    step = client.post("/login", data={"username": "op", "password": PASSWORD, "csrf": login})
    options = json.loads(html.unescape(re.search(r'data-options="([^"]+)"', step.text).group(1)))  # type: ignore[union-attr]
    done = client.post("/login/passkey", data={"csrf": login, "credential": device.get(options)},
                       follow_redirects=False)  # fmt: skip
    assert done.status_code == 303
    csrf = form_csrf(client.get("/account").text)
    credential = re.search(r'name="credential_id" value="([^"]+)"', client.get("/account").text)
    removed = client.post("/account/passkeys/remove", data={
        "csrf": csrf, "credential_id": credential.group(1)})  # type: ignore[union-attr]  # fmt: skip
    assert removed.status_code == 200 and "Passkey removed." in removed.text
    got = [(a[1], a[3], a[4]) for a in entries(db)]
    assert got == [
        ("staff.passkey.register", "refused", "wrong_password"),
        ("staff.passkey.register", "ok", ""), ("staff.totp.switch", "refused", "wrong_code"),
        ("staff.totp.switch", "ok", ""), ("staff.passkey.remove", "ok", ""),
    ]  # fmt: skip


def test_staff_cli_reset_prints_a_one_time_enrolment_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    config = tmp_path / "central.toml"
    config.write_text(f'[database]\nurl = "{url}"\n[api]\npublic_url = "https://ops.example.jp"\n')
    with Database(url) as db:
        db.upgrade_schema()
        StaffStore(db).create("boss", PASSWORD, "admin")

    def cli(*args: str) -> int:  # its own context: the command sets the audit source
        return contextvars.copy_context().run(cli_main, [*args, "--config", str(config)])

    assert cli("staff", "reset", "boss") == 0
    printed = capsys.readouterr().out
    assert "https://ops.example.jp/enrol/" in printed
    assert cli("staff", "reset", "nobody") == 1
    with Database(url) as db:
        assert not StaffStore(db).has_totp("boss")
        got = [(a[1], a[2], a[3], a[4]) for a in entries(db)]
        assert [(a[0].startswith("cli"), a[1]) for a in audit(db)] == [
            (True, "staff.second_factor.reset")] * 2  # fmt: skip
        assert got == [("staff.second_factor.reset", "staff:boss", "ok", ""),
                       ("staff.second_factor.reset", "staff:nobody", "refused",
                        "unknown_account")]  # fmt: skip
        with db.read() as conn:  # from the console: source "cli"
            assert set(conn.execute(select(audit_log.c.source)).scalars()) == {"cli"}
