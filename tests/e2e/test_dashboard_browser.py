"""The dashboard in real headless Chromium (Debian's chromium + chromedriver,
driven by Selenium): sign in with a TOTP code, see a device go offline,
acknowledge its alert. Screenshots are kept as artifacts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from central.api.app import create_app
from central.db.engine import Database
from central.ingest.store import IngestStore
from central.ops.alerts import AlertEngine, AlertThresholds
from central.ops.service import AlertStore, evaluate_round
from central.ops.staff import StaffStore
from contracts.mqtt import Health, Status
from tests.harness.browser import serve_app
from tests.harness.keys import fixed_code_key
from tests.harness.services import wait_until

PASSWORD = "correct horse battery"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Database]]:
    db = Database(f"sqlite:///{tmp_path / 'central.db'}")
    with serve_app(create_app(db, code_key=fixed_code_key), "the dashboard") as url:
        yield url, db
    db.close()


@pytest.fixture
def browser(chromium: Callable[..., webdriver.Chrome]) -> webdriver.Chrome:
    return chromium(window=(1280, 900))


def test_dashboard_browser_sign_in_offline_and_acknowledge(
    server: tuple[str, Database], browser: webdriver.Chrome, artifacts_dir: Path
) -> None:
    url, db = server
    shots = artifacts_dir / "dashboard"
    shots.mkdir(exist_ok=True)
    secret = StaffStore(db).create("tanaka", PASSWORD, "operator")
    ingest = IngestStore(db, "test")
    ingest.register_device("gym-door-01", "gym")
    ingest.record_status("gym-door-01", Status(state="online", session=3))
    ingest.record_health("gym-door-01", Health(at=datetime.now(UTC), session=3, cpu_temp_c=52.0))

    browser.get(f"{url}/login?lang=ja")
    browser.find_element(By.ID, "username").send_keys("tanaka")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "code").send_keys(pyotp.TOTP(secret).now())
    browser.save_screenshot(str(shots / "login.png"))
    browser.find_element(By.ID, "signin").click()
    wait_until(lambda: "端末一覧" in (browser.page_source or ""), 10, "the fleet page")
    row = browser.find_element(By.ID, "device-gym-door-01").get_attribute("innerHTML") or ""
    assert "status-online" in row
    browser.save_screenshot(str(shots / "fleet-online.png"))

    # The broker publishes the device's last will; the rules round opens an alert.
    ingest.record_status("gym-door-01", Status(state="offline", session=3))
    engine, now = AlertEngine(AlertThresholds(offline_after_s=60)), datetime.now(UTC)
    for moment in (now, now + timedelta(seconds=61)):  # offline for a minute
        evaluate_round(db, engine, AlertStore(db), [], moment)
    browser.refresh()
    row = browser.find_element(By.ID, "device-gym-door-01").get_attribute("innerHTML") or ""
    assert "status-offline" in row and "⚠ 1" in row
    browser.save_screenshot(str(shots / "fleet-offline.png"))

    browser.get(f"{url}/alerts")
    [alert] = AlertStore(db).listing()
    browser.find_element(By.ID, f"ack-{alert['pk']}").click()
    wait_until(
        lambda: "確認済み (tanaka)" in (browser.page_source or ""), 10, "the acknowledged alert"
    )
    browser.save_screenshot(str(shots / "alert-acknowledged.png"))
    assert AlertStore(db).listing()[0]["acknowledged_by"] == "tanaka"
