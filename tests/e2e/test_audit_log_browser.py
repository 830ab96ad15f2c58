"""The admins' audit log page in real headless Chromium: an admin signs in,
filters the log, and the page passes axe-core (no serious or critical
violation) under the Content-Security-Policy in force (no inline script or
style: the style sheet applies, no CSP report in the console)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pyotp
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from central.api.app import create_app
from central.db.engine import Database
from central.ops.staff import StaffStore
from tests.harness.axe import axe_script, serious_violations
from tests.harness.browser import serve_app
from tests.harness.keys import fixed_code_key
from tests.harness.services import wait_until

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Database]]:
    db = Database(f"sqlite:///{tmp_path / 'central.db'}")
    with serve_app(create_app(db, code_key=fixed_code_key), "the dashboard") as url:
        yield url, db
    db.close()


def test_audit_log_browser_admin_filters_and_page_passes_axe(
    server: tuple[str, Database], chromium: Callable[..., webdriver.Chrome], artifacts_dir: Path
) -> None:
    url, db = server
    browser = chromium(window=(1280, 900))
    browser.set_script_timeout(30)
    secret = StaffStore(db).create("kimura", PASSWORD, "admin")
    browser.get(f"{url}/login?lang=ja")
    browser.find_element(By.ID, "username").send_keys("kimura")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "code").send_keys(pyotp.TOTP(secret).now())
    browser.find_element(By.ID, "signin").click()
    wait_until(lambda: 'id="logout"' in (browser.page_source or ""), 10, "the fleet page")

    browser.find_element(By.LINK_TEXT, "監査ログ").click()
    wait_until(lambda: 'id="audit-log"' in (browser.page_source or ""), 10, "the audit log")
    browser.find_element(By.NAME, "action").send_keys("staff.")
    Select(browser.find_element(By.NAME, "outcome")).select_by_value("ok")
    browser.find_element(By.NAME, "action").submit()
    wait_until(lambda: "outcome=ok" in browser.current_url, 10, "the filtered page")
    rows = browser.find_elements(By.CSS_SELECTOR, "#audit-log tbody tr")
    assert len(rows) == 1 and "staff.sign_in" in rows[0].text and "kimura" in rows[0].text
    shots = artifacts_dir / "dashboard"
    shots.mkdir(exist_ok=True)
    browser.save_screenshot(str(shots / "audit-log.png"))

    assert serious_violations(browser, axe_script()) == []
    header = browser.find_element(By.TAG_NAME, "header")
    assert header.value_of_css_property("background-color") == "rgba(0, 49, 216, 1)"
    export = browser.find_element(By.ID, "audit-export").get_attribute("href") or ""
    assert export.endswith("/audit-log.csv?action=staff.&outcome=ok")
