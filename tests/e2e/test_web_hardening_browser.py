"""The dashboard and the booking site in real headless Chromium, served over
plain http with public addresses that are https (TLS ends at a proxy in
front): every cookie the browser keeps is Secure, the pages carry the CSP
(no inline script, frame-ancestors 'none') and no-store, the external
script and style sheet still work under it, and a page of another origin
that frames the dashboard gets nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from central.db.engine import Database
from central.ops.staff import StaffStore
from central.websec import WebOptions
from tests.harness.booking_site import Mailbox, site_settings, smtp_server
from tests.harness.browser import serve_app
from tests.harness.keys import fixed_code_key
from tests.harness.services import free_port, wait_until

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery"
HEADERS_JS = """
const done = arguments[arguments.length - 1];
fetch(location.href, {credentials: "same-origin"}).then((r) => done({
  csp: r.headers.get("content-security-policy"), cache: r.headers.get("cache-control")}));
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Database, Mailbox]]:
    from central.api.app import create_app
    from tests.harness.booking import booking_world

    db = Database(f"sqlite:///{tmp_path / 'central.db'}")
    web = WebOptions(public_url="https://ops.city.example")
    with smtp_server() as (mailbox, smtp_port):
        world = booking_world(db)
        world.member("aki")
        settings = site_settings(smtp_port, public_url="https://yoyaku.city.example")
        # The real clock: the staff's TOTP app has one.
        app = create_app(db, code_key=fixed_code_key, booking_site=settings, web=web)
        with serve_app(app, "central") as url:
            yield url, db, mailbox
    db.close()


@pytest.fixture
def browser(chromium: Callable[..., webdriver.Chrome]) -> webdriver.Chrome:
    driver = chromium(window=(1280, 800), flags=("--lang=ja",))
    driver.set_script_timeout(10)
    return driver


def _headers(browser: webdriver.Chrome) -> dict[str, Any]:
    found: dict[str, Any] = browser.execute_async_script(HEADERS_JS)
    return found


def test_browser_dashboard_secure_cookies_csp_and_no_store(
    server: tuple[str, Database, Mailbox], browser: webdriver.Chrome
) -> None:
    url, db, _ = server
    secret = StaffStore(db).create("tanaka", PASSWORD, "operator")
    browser.get(f"{url}/login")
    browser.find_element(By.ID, "username").send_keys("tanaka")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "code").send_keys(pyotp.TOTP(secret).now())
    browser.find_element(By.ID, "signin").click()
    wait_until(lambda: 'id="logout"' in (browser.page_source or ""), 10, "the fleet page")
    cookies = {c["name"]: c for c in browser.get_cookies()}
    assert "kiosk_session" in cookies
    assert all(c["secure"] for c in cookies.values()), cookies
    headers = _headers(browser)
    assert "frame-ancestors 'none'" in headers["csp"] and "script-src 'self'" in headers["csp"]
    assert headers["cache"] == "no-store"
    # The staff call script (a static file now) ran, and the style sheet applies.
    assert browser.execute_script("return window.staffCallTones") == 0
    header = browser.find_element(By.TAG_NAME, "header")
    assert header.value_of_css_property("background-color") == "rgba(0, 49, 216, 1)"


def test_browser_booking_site_secure_cookies_csp_and_no_store(
    server: tuple[str, Database, Mailbox], browser: webdriver.Chrome
) -> None:
    url, _, mailbox = server
    browser.get(f"{url}/booking/sign-in")
    browser.find_element(By.ID, "email").send_keys("aki@example.jp")
    browser.find_element(By.ID, "send").click()
    wait_until(lambda: 'id="code"' in (browser.page_source or ""), 10, "the code form")
    _link, code = Mailbox.sign_in(mailbox.wait(1))
    browser.find_element(By.ID, "code").send_keys(code)
    browser.find_element(By.ID, "code-submit").click()
    wait_until(lambda: "施設一覧" in (browser.page_source or ""), 10, "the facilities")
    cookies = {c["name"]: c for c in browser.get_cookies()}
    assert "booking_session" in cookies
    assert all(c["secure"] for c in cookies.values()), cookies
    headers = _headers(browser)
    assert "frame-ancestors 'none'" in headers["csp"] and headers["cache"] == "no-store"


def test_browser_dashboard_framed_by_another_origin_is_refused(
    server: tuple[str, Database, Mailbox], browser: webdriver.Chrome
) -> None:
    url, _, _ = server
    # Another origin (localhost vs 127.0.0.1, another port) frames the
    # dashboard's sign-in, and (the control) a page of its own.
    attacker = Starlette(routes=[
        Route("/", lambda _r: HTMLResponse(
            f'<iframe id="victim" src="{url}/login"></iframe>'
            '<iframe id="control" src="/inner"></iframe>')),
        Route("/inner", lambda _r: HTMLResponse('<p id="inner">framed</p>')),
    ])  # fmt: skip
    port = free_port()
    with serve_app(attacker, "the framing page", port):
        browser.get(f"http://localhost:{port}/")

        def framed(frame: str, element: str) -> bool:
            browser.switch_to.default_content()
            browser.switch_to.frame(frame)
            return bool(browser.find_elements(By.ID, element))

        wait_until(lambda: framed("control", "inner"), 10, "the control frame")
        assert not framed("victim", "username")
        browser.switch_to.default_content()
