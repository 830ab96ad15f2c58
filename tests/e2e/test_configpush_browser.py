"""The configuration pages in real headless Chromium: an admin types
settings (a key that may not be pushed is refused with its name), saves,
pushes, and sees the device's applied version once its health reports it.
Screenshots are kept as artifacts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyotp
import pytest
from fastapi import FastAPI
from selenium import webdriver
from selenium.webdriver.common.by import By

from central.configpush import ConfigPushService
from central.db.engine import Database
from central.ingest.store import IngestStore
from central.ops.dashboard.config_page import add_config_pages
from central.ops.dashboard.views import add_dashboard
from central.ops.staff import StaffStore
from contracts.mqtt import Health
from tests.harness.browser import serve_app
from tests.harness.services import wait_until

PASSWORD = "correct horse battery"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Database, list[dict[str, Any]]]]:
    db = Database(f"sqlite:///{tmp_path / 'central.db'}")
    issued: list[dict[str, Any]] = []

    def issue(device: str, name: str, args: dict[str, Any], issuer: str, source: str) -> str:
        issued.append({"device": device, "name": name, **args})
        return f"00000000-0000-4000-8000-{len(issued):012d}"

    app = FastAPI()
    add_config_pages(app, add_dashboard(app, db), ConfigPushService(db, issue))
    with serve_app(app, "the dashboard") as url:
        yield url, db, issued
    db.close()


def shown(browser: webdriver.Chrome, element: str) -> str:
    """The text of ``element`` once the page that has it is loaded (a form
    post is in flight after the click)."""
    found: list[str] = []

    def present() -> bool:
        elements = browser.find_elements(By.ID, element)
        found[:] = [elements[0].text] if elements else []
        return bool(found)

    wait_until(present, 15, f"#{element}")
    return found[0]


def test_configpush_browser_edit_refuse_save_push_and_applied(
    server: tuple[str, Database, list[dict[str, Any]]],
    chromium: Callable[..., webdriver.Chrome], artifacts_dir: Path,
) -> None:  # fmt: skip
    url, db, issued = server
    shots = artifacts_dir / "configpush"
    shots.mkdir(exist_ok=True)
    secret = StaffStore(db).create("admin1", PASSWORD, "admin")
    IngestStore(db, "test").register_device("gym-door-01", "gym")
    browser = chromium(window=(1280, 1000))
    browser.get(f"{url}/login?lang=en")
    browser.find_element(By.ID, "username").send_keys("admin1")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "code").send_keys(pyotp.TOTP(secret).now())
    browser.find_element(By.ID, "signin").click()
    wait_until(lambda: "/login" not in browser.current_url, 10, "the sign-in")

    browser.get(f"{url}/config/device/gym-door-01")
    editor = browser.find_element(By.ID, "config-settings")
    editor.send_keys('[broker]\nhost = "evil.example"\n')
    browser.find_element(By.ID, "config-save").click()
    error = shown(browser, "config-error")
    assert "[broker] is not pushable" in error
    browser.save_screenshot(str(shots / "refused.png"))

    editor = browser.find_element(By.ID, "config-settings")
    editor.clear()
    editor.send_keys("[lock]\ndefault_unlock_seconds = 8\n")
    browser.find_element(By.ID, "config-save").click()
    assert "Saved as version 1." in shown(browser, "config-saved")
    browser.find_element(By.ID, "config-push").click()
    wait_until(lambda: "pushed=1" in browser.current_url, 10, "the push")
    assert issued == [{"device": "gym-door-01", "name": "config.apply", "version": 1,
                       "settings": {"lock": {"default_unlock_seconds": 8}}}]  # fmt: skip
    row = browser.find_element(By.ID, "config-gym-door-01")
    assert row.find_element(By.CLASS_NAME, "state").text == "Pending"
    assert row.find_element(By.CLASS_NAME, "applied").text == "—"

    IngestStore(db, "test").record_health(
        "gym-door-01", Health(at=datetime.now(UTC), session=1, config_version=1)
    )
    browser.refresh()
    row = browser.find_element(By.ID, "config-gym-door-01")
    assert row.find_element(By.CLASS_NAME, "applied").text == "1"
    assert row.find_element(By.CLASS_NAME, "state").text == "Applied"
    assert "default_unlock_seconds = 8" in browser.find_element(By.ID, "config-desired").text
    browser.save_screenshot(str(shots / "applied.png"))
