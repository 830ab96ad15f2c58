"""Staff passkeys and account management in real headless Chromium with its
virtual authenticator (CTAP2, internal transport, resident keys, user
verification): register a passkey, sign in with password + passkey, fall back
to the authenticator code, a passkey of another site, a cloned counter; the
admin's staff page. http://localhost is a secure context, so the site runs
at localhost (the RP id) rather than 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pyotp
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.virtual_authenticator import (
    Credential,
)
from selenium.webdriver.support.ui import Select
from sqlalchemy import select, update

from central.api.app import create_app
from central.db.engine import Database
from central.db.tables import audit_log, staff_passkeys
from central.ops.staff import StaffStore
from central.websec import WebOptions
from tests.harness.axe import axe_script, serious_violations
from tests.harness.browser import serve_app
from tests.harness.command_desk import CommandDesk, next_code, virtual_authenticator
from tests.harness.keys import fixed_code_key
from tests.harness.services import free_port, wait_until

PASSWORD = "correct horse battery"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Database]]:
    db = Database(f"sqlite:///{tmp_path / 'central.db'}")
    port = free_port()
    url = f"http://localhost:{port}"
    app = create_app(db, code_key=fixed_code_key, web=WebOptions(public_url=url))
    with serve_app(app, "the dashboard", port):
        yield url, db
    db.close()


@pytest.fixture
def browser(chromium: Callable[..., webdriver.Chrome]) -> Iterator[webdriver.Chrome]:
    driver = chromium(window=(1280, 900))
    yield driver
    driver.get("about:blank")  # closes a signed-in page's event stream before the server stops


class Staff(CommandDesk):
    """A staff member at the sign-in and account pages (``text``,
    ``wait_text`` from the command desk)."""

    def __init__(self, driver: webdriver.Chrome, url: str) -> None:
        super().__init__(driver, url, PASSWORD)
        self.axe = axe_script()

    def accessible(self) -> None:
        assert serious_violations(self.driver, self.axe) == []

    def password(self, user: str, code: str = "") -> None:
        self.driver.get(f"{self.url}/login?lang=en")
        self.driver.find_element(By.ID, "username").send_keys(user)
        self.driver.find_element(By.ID, "password").send_keys(PASSWORD)
        if code:
            self.driver.find_element(By.ID, "code").send_keys(code)
        self.driver.find_element(By.ID, "signin").click()

    def sign_out(self) -> None:
        self.driver.find_element(By.ID, "logout").click()
        self.wait_text("Sign in")


def test_passkey_browser_register_sign_in_fallback_other_site_and_clone(
    server: tuple[str, Database], browser: webdriver.Chrome
) -> None:
    url, db = server
    secret = StaffStore(db).create("tanaka", PASSWORD, "operator")
    staff = Staff(browser, url)
    browser.add_virtual_authenticator(virtual_authenticator())
    staff.password("tanaka", pyotp.TOTP(secret).now())  # the fallback below takes the next step
    staff.wait_text("Devices")

    browser.get(f"{url}/account")
    staff.accessible()
    browser.find_element(By.ID, "passkey-label").send_keys("office PC")
    browser.find_element(By.ID, "passkey-password").send_keys(PASSWORD)
    browser.find_element(By.ID, "passkey-add").click()
    staff.wait_text("Passkey added.")
    assert "office PC" in staff.text()
    staff.sign_out()

    # Password, then the passkey.
    staff.password("tanaka")
    staff.wait_text("Use my passkey")
    staff.accessible()
    browser.find_element(By.ID, "passkey-signin").click()
    staff.wait_text("Devices")
    with db.read() as conn:
        [row] = conn.execute(select(staff_passkeys)).all()
    assert row.last_used_at is not None and row.sign_count >= 1
    staff.sign_out()

    # "Use authenticator code instead" on the passkey page.
    staff.password("tanaka")
    staff.wait_text("Use authenticator code instead")
    browser.find_element(By.ID, "fallback-code").send_keys(next_code(secret))
    browser.find_element(By.ID, "code-signin").click()
    staff.wait_text("Devices")
    staff.sign_out()

    # Only a passkey of another site on this device: the browser finds none for us.
    browser.remove_all_credentials()
    browser.add_credential(Credential.create_non_resident_credential(
        os.urandom(16), "evil.example", _p256_pkcs8(), 0))  # fmt: skip
    staff.password("tanaka")
    staff.wait_text("Use my passkey")
    browser.find_element(By.ID, "passkey-signin").click()
    staff.wait_text("No passkey was used")
    browser.remove_virtual_authenticator()


def test_passkey_browser_cloned_counter_is_refused_and_disabled(
    server: tuple[str, Database], browser: webdriver.Chrome
) -> None:
    url, db = server
    secret = StaffStore(db).create("tanaka", PASSWORD, "operator")
    staff = Staff(browser, url)
    browser.add_virtual_authenticator(virtual_authenticator())
    staff.password("tanaka", next_code(secret))
    staff.wait_text("Devices")
    browser.get(f"{url}/account?lang=en")
    browser.find_element(By.ID, "passkey-label").send_keys("blue key")
    browser.find_element(By.ID, "passkey-password").send_keys(PASSWORD)
    browser.find_element(By.ID, "passkey-add").click()
    staff.wait_text("Passkey added.")
    staff.sign_out()
    # Another authenticator with the same key has been used far more often:
    # this one's next counter is lower than the one stored.
    with db.write() as conn:
        conn.execute(update(staff_passkeys).values(sign_count=1000))
    staff.password("tanaka")
    staff.wait_text("Use my passkey")
    browser.find_element(By.ID, "passkey-signin").click()
    staff.wait_text("looks copied")
    with db.read() as conn:
        [row] = conn.execute(select(staff_passkeys)).all()
        query = select(audit_log.c.action, audit_log.c.outcome, audit_log.c.reason).where(
            audit_log.c.reason == "cloned")  # fmt: skip
        cloned = [tuple(r) for r in conn.execute(query.order_by(audit_log.c.pk))]
    assert row.disabled_at is not None
    assert cloned == [("staff.passkey.disable", "ok", "cloned"),
                      ("staff.sign_in", "refused", "cloned")]  # fmt: skip
    # Next time the account goes straight to the code.
    staff.password("tanaka")
    staff.wait_text("Password accepted for tanaka")
    assert "Use my passkey" not in staff.text()
    assert browser.find_element(By.ID, "fallback-code").is_displayed()


def test_staff_admin_browser_manages_accounts(
    server: tuple[str, Database], browser: webdriver.Chrome
) -> None:
    url, db = server
    store = StaffStore(db)
    boss, op = store.create("boss", PASSWORD, "admin"), store.create("op", PASSWORD, "operator")
    staff = Staff(browser, url)
    staff.password("op", next_code(op))
    staff.wait_text("Devices")
    browser.get(f"{url}/staff")
    assert "admin role" in staff.text()  # 403
    staff.driver.get(f"{url}/account")
    staff.sign_out()

    staff.password("boss", next_code(boss))
    staff.wait_text("Staff accounts")
    browser.get(f"{url}/staff")
    staff.accessible()
    browser.find_element(By.ID, "new-username").send_keys("suzuki")
    Select(browser.find_element(By.ID, "new-role")).select_by_value("viewer")
    browser.find_element(By.ID, "create-staff").click()
    staff.wait_text("shown only once")
    link = browser.find_element(By.ID, "issued-link").text
    initial = browser.find_element(By.ID, "issued-password").text
    assert link.startswith(f"{url}/enrol/")
    staff.accessible()
    Select(browser.find_element(By.ID, "role-op")).select_by_value("admin")
    browser.find_element(By.ID, "setrole-op").click()
    wait_until(lambda: staff.text("role-of-op") == "admin", 10, "op admin")
    browser.find_element(By.ID, "toggle-suzuki").click()
    wait_until(lambda: "Disabled" in staff.text("staff-suzuki"), 10, "suzuki disabled")
    browser.find_element(By.ID, "reset-op").click()
    staff.wait_text("shown only once")
    browser.find_element(By.ID, "toggle-suzuki").click()  # enable again
    wait_until(lambda: "Enabled" in staff.text("staff-suzuki"), 10, "suzuki enabled")
    staff.sign_out()

    # The new staff member opens the link: password, then an authenticator app.
    browser.get(link)
    staff.accessible()
    browser.find_element(By.ID, "username").send_keys("suzuki")
    browser.find_element(By.ID, "password").send_keys(initial)
    browser.find_element(By.ID, "enrol").click()
    staff.wait_text("Next: add a passkey")
    staff.accessible()
    assert StaffStore(db).has_totp("suzuki")
    with db.read() as conn:
        actions = conn.execute(select(audit_log.c.action).where(
            audit_log.c.action.not_in(("staff.sign_in", "staff.sign_out", "dashboard.request")))
            .order_by(audit_log.c.pk)).scalars().all()  # fmt: skip
    assert actions == ["staff.create", "staff.role", "staff.disable", "staff.second_factor.reset",
                       "staff.enable", "staff.enrol"]  # fmt: skip


def _p256_pkcs8() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip
