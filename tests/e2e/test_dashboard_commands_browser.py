"""A remote unlock from the dashboard in real headless Chromium: an operator
signs in, opens the device page, asks an unlock, confirms it with a passkey
made for that confirmation (Chromium's virtual authenticator) -- or, as the
fallback, a new authenticator code -- and watches the command's state change
live as a test device answers through the real broker (SQLite; the
end-to-end test through the device agent and lockctl builds on
:mod:`tests.harness.command_desk`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from selenium import webdriver

from central.api.app import create_app
from central.commands import CommandService
from central.db.engine import Database
from central.ops.staff import StaffStore
from central.websec import WebOptions
from tests.harness.axe import axe_script, serious_violations
from tests.harness.browser import serve_app
from tests.harness.central_commands import device_client, register, start_relay, write_signing_key
from tests.harness.command_desk import PASSWORD, CommandDesk, next_code, virtual_authenticator
from tests.harness.keys import fixed_code_key
from tests.harness.mosquitto import Mosquitto
from tests.harness.services import free_port


@dataclass
class Office:
    url: str
    db: Database
    service: CommandService
    key: object


@pytest.fixture
def office(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Office]:
    db = Database(f"sqlite:///{tmp_path / 'central.db'}")
    _, key = write_signing_key(tmp_path / "keys")
    service = CommandService(db, key, default_lifetime=timedelta(minutes=5))
    relay = start_relay(service, mosquitto, tmp_path / "central")
    port = free_port()
    url = f"http://localhost:{port}"  # a secure context for WebAuthn
    app = create_app(db, code_key=fixed_code_key, web=WebOptions(public_url=url),
                     commands=service)  # fmt: skip
    with serve_app(app, "the dashboard", port):
        yield Office(url, db, service, key)
    relay.close()
    db.close()


@pytest.fixture
def browser(chromium: Callable[..., webdriver.Chrome]) -> Iterator[webdriver.Chrome]:
    driver = chromium(window=(1280, 900))
    yield driver
    driver.get("about:blank")  # closes the event streams before the server stops


def test_dashboard_commands_browser_unlock_with_passkey_and_code_live_state(
    office: Office, mosquitto: Mosquitto, browser: webdriver.Chrome
) -> None:
    secret = StaffStore(office.db).create("sato", PASSWORD, "operator")
    register(office.db, "gym-door-1", "gym", doors=("main", "side"))
    door = device_client(mosquitto, "gym-door-1", office.key)  # type: ignore[arg-type]
    door.online()
    desk = CommandDesk(browser, office.url)
    browser.add_virtual_authenticator(virtual_authenticator())
    try:
        desk.sign_in("sato", secret)
        desk.add_passkey()
        sentence = desk.ask_unlock("gym-door-1", "main", 12, "card reader jammed")
        assert sentence == "Unlock door main of gym-door-1 for 12 seconds."
        assert desk.text("command-passkey") and desk.text("command-code-send")
        assert serious_violations(browser, axe_script()) == []

        command_id = desk.unlock_from_device_page("gym-door-1", "main", 12, "card reader jammed")
        got = door.next_command()
        assert got.command.id == command_id and got.command.issued_by == "staff:sato"
        assert got.command.args == {"door": "main", "seconds": 12.0,
                                    "reason": "card reader jammed"}  # fmt: skip
        browser.execute_script("window.stillTheSamePage = true;")
        door.answer(got, "delivered")
        desk.wait_state(command_id, "Delivered")
        door.answer(got, "done", message="unlocked for 12 s")
        desk.wait_state(command_id, "Done")
        assert browser.execute_script("return window.stillTheSamePage === true;")

        # The authenticator code instead of the passkey (a step never used before).
        second = desk.unlock_from_device_page("gym-door-1", "side", 5, "delivery at the back",
                                              code=next_code(secret))  # fmt: skip
        got = door.next_command()
        assert got.command.id == second and got.command.args["door"] == "side"
        door.answer(got, "failed", code="lock_fault", message="relay did not energise")
        desk.wait_state(second, "Failed")
        assert "relay did not energise" in desk.text("command-list")
    finally:
        browser.remove_virtual_authenticator()
        door.close()
