"""Call staff end to end: a tap on the real check-in touchscreen (Kivy under
Xvfb) records the call in the outbox; the real sync agent sends it through
mosquitto (mutual TLS, the fleet ACL) to central's ingest worker, which
opens a ``staff_requested`` alert; the dashboard in headless Chromium shows
it live (server-sent events) within 2 s; staff press "on the way"; the relay
publishes the retained call state, the agent keeps it in the store and the
touchscreen says staff are on the way; "done" clears it and the screen
returns to the start. A second call ends when the person leaves (Back).

With the broker gone, the screen says staff could not be reached and where
to go, from ``[staff_call]``.

The measured latencies are printed and written to
``artifacts/staffcall/latency.json``.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from central import mqtt as central_mqtt
from central.api.app import create_app
from central.config import load_config as load_central_config
from central.db.engine import Database
from central.ops.service import AlertStore
from central.ops.staff import StaffStore
from central.ops.staffcalls import StaffCallRelay, StaffCalls
from sync.staffcall import link_connected
from sync.store import open_store
from tests.harness.browser import serve_app
from tests.harness.central import worker_thread, write_config
from tests.harness.keys import fixed_code_key, write_test_key
from tests.harness.mosquitto import Mosquitto
from tests.harness.services import ServiceProcess, wait_until
from tests.harness.syncdev import agent_process, write_device_config

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
DEVICE, FACILITY = "e2e-staff-door", "gym"
ALERTED = "係員を呼びました。ここでお待ちください。"
ON_THE_WAY = "係員が向かっています。ここでお待ちください。"
UNREACHABLE = "係員を呼び出せませんでした。"


def kiosk_config(broker: Mosquitto, folder: Path) -> Path:
    """The sync agent's device config plus what the touchscreen needs."""
    path = write_device_config(broker, folder, DEVICE, FACILITY)
    key = write_test_key(folder / "credential.key")
    path.write_text(
        path.read_text()
        + f'[reader]\ncredential_key_file = "{key}"\n'
        + f'[lock]\nsocket = "{folder / "lockctl.sock"}"\npin_factory = "mock"\n'
        + '[[doors]]\nid = "room-a"\nname = "Room A"\nrelay_pin = 17\n'
        + '[staff_call]\nwhere = "1F 総合案内"\nphone = "0xx-xxx-xxxx"\n'
        + "answer_timeout_seconds = 5\n"
    )
    return path


class KioskDriver:
    """``tests.e2e.ui_driver`` in the background; its report lines on a queue."""

    def __init__(self, scenario: dict[str, Any], folder: Path, env: dict[str, str]) -> None:
        file = folder / "scenario.json"
        file.write_text(json.dumps(scenario))
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self.err = folder / "driver.err"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.ui_driver", str(file)], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=self.err.open("w"), text=True,
        )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("{"):
                self.lines.put(json.loads(line))

    def expect(self, key: str, timeout: float = 30.0) -> dict[str, Any]:
        """The next report line with ``key`` (an error line fails the test)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {key!r} from the kiosk; {self.tail()}") from None
            self.seen.append(line)
            assert "error" not in line, (line, self.seen[-8:], self.tail())
            if key in line:
                return line

    def tail(self) -> str:
        return self.err.read_text()[-3000:] if self.err.exists() else ""

    def finish(self) -> None:
        try:
            self.process.wait(60)
        finally:
            if self.process.poll() is None:
                self.process.kill()


@pytest.fixture
def central(
    tmp_path: Path, fresh_mosquitto: Mosquitto
) -> Iterator[tuple[str, Database, StaffCallRelay]]:
    """Ingest worker, staff-call relay and dashboard on one SQLite database."""
    fresh_mosquitto.devices[DEVICE] = FACILITY
    fresh_mosquitto.reload_acl()
    url = f"sqlite:///{tmp_path / 'central.db'}"
    db = Database(url)
    config_path = write_config(tmp_path / "central", fresh_mosquitto, url)
    config = load_central_config(config_path)
    client = central_mqtt.make_client(config.broker, central_mqtt.client_id("e2e-staffcalls"))
    relay = StaffCallRelay(db, client, lambda: central_mqtt.start(client, config.broker),
                           lambda: central_mqtt.stop(client))  # fmt: skip
    app = create_app(db, code_key=fixed_code_key, staff_calls_changed=relay.wake)
    with worker_thread(config_path), serve_app(app, "dashboard") as web:
        relay.start()
        try:
            yield web, db, relay
        finally:
            relay.close()
    db.close()


@pytest.fixture
def agent(tmp_path: Path, fresh_mosquitto: Mosquitto) -> Iterator[tuple[Path, ServiceProcess]]:
    folder = tmp_path / "device"
    config = kiosk_config(fresh_mosquitto, folder)
    process = agent_process(config, folder / "agent.log")
    process.start()
    with open_store(folder / "device.db") as store:
        wait_until(lambda: link_connected(store, time.time(), 90), 20, "the agent to connect")
    yield config, process
    process.stop()


def sign_in(browser: webdriver.Chrome, url: str, secret: str) -> None:
    browser.get(f"{url}/login?lang=ja")
    browser.find_element(By.ID, "username").send_keys("tanaka")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "code").send_keys(pyotp.TOTP(secret).now())
    browser.find_element(By.ID, "signin").click()
    wait_until(lambda: "端末一覧" in (browser.page_source or ""), 10, "the fleet page")


def banner_calls(browser: webdriver.Chrome) -> list[str]:
    # Read in the page: the banner is rebuilt at every update, so element
    # handles held across one would go stale.
    script = "return [...document.querySelectorAll('#staffcall-list .call')].map(e => e.id)"
    return list(browser.execute_script(script))


def banner_text(browser: webdriver.Chrome, call: int) -> str:
    script = "return (document.getElementById(arguments[0]) || {}).textContent || ''"
    return str(browser.execute_script(script, f"call-{call}"))


def test_staffcall_press_dashboard_acknowledge_device_done(
    tmp_path: Path,
    central: tuple[str, Database, StaffCallRelay],
    agent: tuple[Path, ServiceProcess],
    kivy_env: dict[str, str],
    chromium: Callable[..., webdriver.Chrome],
    artifacts_dir: Path,
) -> None:
    url, db, _relay = central
    config, _process = agent
    shots = artifacts_dir / "staffcall"
    shots.mkdir(exist_ok=True)
    browser = chromium(window=(1280, 900), flags=["--autoplay-policy=no-user-gesture-required"])
    sign_in(browser, url, StaffStore(db).create("tanaka", PASSWORD, "operator"))
    wait_until(lambda: browser.execute_script("return window.staffCallTones") == 0, 10,
               "the staff call listener on the fleet page")  # fmt: skip

    steps: list[dict[str, Any]] = [
        {"wait": "attract", "timeout": 10},
        {"tap": "attract.top.access.staff_button"},
        {"title": ALERTED, "timeout": 10},
        {"shot": "staffcall-alerted"},
        {"title": ON_THE_WAY, "timeout": 60},
        {"shot": "staffcall-on-the-way"},
        {"wait": "attract", "timeout": 60},
        # A second call; the person gives up and leaves (Back).
        {"tap": "attract.top.access.staff_button"},
        {"title": ALERTED, "timeout": 10},
        {"tap": "staff.back_button"},
        {"wait": "attract", "timeout": 5},
    ]
    scenario = {"config": str(config), "artifacts": str(shots), "steps": steps}
    kiosk = KioskDriver(scenario, tmp_path, kivy_env)
    try:
        pressed = kiosk.expect("tapped")["at"]
        wait_until(lambda: bool(banner_calls(browser)), 10, "the call on the dashboard")
        on_dashboard = time.time()
        [call] = StaffCalls(db).live()
        assert call["device"] == DEVICE and "screen: checkin" in call["detail"]
        assert banner_calls(browser) == [f"call-{call['pk']}"]
        assert browser.execute_script("return window.staffCallTones") == 1  # the tone was played
        browser.save_screenshot(str(shots / "dashboard-call.png"))
        kiosk.expect("title")  # the screen knows central has the call

        browser.find_element(By.ID, f"onway-{call['pk']}").click()
        acknowledged = time.time()
        seen_on_device = kiosk.expect("title", 30)
        assert seen_on_device["title"] == ON_THE_WAY
        wait_until(lambda: "tanaka" in banner_text(browser, call["pk"]), 5,
                   "the banner to say who is on the way")  # fmt: skip
        browser.save_screenshot(str(shots / "dashboard-on-the-way.png"))

        browser.find_element(By.ID, f"done-{call['pk']}").click()
        kiosk.expect("reached", 30)  # the attract screen again
        wait_until(lambda: not banner_calls(browser), 5, "the banner to clear")
        row = AlertStore(db).get(call["pk"])
        assert row is not None and (row["state"], row["resolved_by"]) == ("resolved", "tanaka")

        # The second call: opened, then resolved by the device when the person leaves.
        kiosk.expect("tapped")
        kiosk.expect("title")
        kiosk.expect("reached", 10)
        wait_until(lambda: len(AlertStore(db).listing()) == 2 and not StaffCalls(db).live(),
                   10, "the second call to be resolved by the device")  # fmt: skip
        second = AlertStore(db).listing()[0]
        assert second["resolved_by"] == "device"
        kiosk.expect("done", 30)
    finally:
        browser.get("about:blank")  # closes the event stream before the server stops
        kiosk.finish()
    figures = {
        "press_to_dashboard_s": round(on_dashboard - pressed, 3),
        "ack_to_device_s": round(seen_on_device["at"] - acknowledged, 3),
    }
    (shots / "latency.json").write_text(json.dumps(figures))
    print("staff call latency", figures)
    assert figures["press_to_dashboard_s"] < 2.0, figures
    assert figures["ack_to_device_s"] < 5.0, figures


def test_staffcall_offline_says_where_to_go(
    tmp_path: Path, fresh_mosquitto: Mosquitto, kivy_env: dict[str, str], artifacts_dir: Path
) -> None:
    """No broker: the agent never connects, and the screen says so at once."""
    folder = tmp_path / "device"
    config = kiosk_config(fresh_mosquitto, folder)
    fresh_mosquitto.stop()
    process = agent_process(config, folder / "agent.log")
    process.start()
    shots = artifacts_dir / "staffcall"
    shots.mkdir(exist_ok=True)
    steps = [
        {"wait": "attract", "timeout": 10},
        {"tap": "attract.top.access.staff_button"},
        {"title": UNREACHABLE, "timeout": 5},
        {"state": True},
        {"shot": "staffcall-offline"},
    ]
    scenario = {"config": str(config), "artifacts": str(shots), "steps": steps}
    kiosk = KioskDriver(scenario, tmp_path, kivy_env)
    try:
        state = kiosk.expect("screen")
        assert state["body"] == "1F 総合案内へお越しください。"
        assert state["next"] == "または 0xx-xxx-xxxx へお電話ください。"
        kiosk.expect("done", 30)
    finally:
        kiosk.finish()
        process.stop()
    with open_store(folder / "device.db") as store:  # kept for when the device is back
        rows = store.query("SELECT type FROM outbox")
    assert [r["type"] for r in rows] == ["kiosk.staff_called"]
