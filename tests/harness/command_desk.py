"""Driving the dashboard's remote commands in headless Chromium (the office
side of a remote unlock), for the browser tests here and the end-to-end test
through the real device agent and lockctl:

    desk = CommandDesk(driver, url)
    desk.sign_in("sato", secret)          # password + authenticator code
    desk.add_passkey()                    # needs the virtual authenticator
    command_id = desk.unlock_from_device_page("door-1", "main", 10, "reader jammed")
    desk.wait_state(command_id, "Done")   # the live list, without a reload
"""

from __future__ import annotations

import time

import pyotp
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.virtual_authenticator import VirtualAuthenticatorOptions
from selenium.webdriver.support.ui import Select

from tests.harness.services import wait_until

PASSWORD = "correct horse battery"


def virtual_authenticator() -> VirtualAuthenticatorOptions:
    """Chromium's virtual platform authenticator (CTAP2, user verification)."""
    return VirtualAuthenticatorOptions(
        protocol=VirtualAuthenticatorOptions.Protocol.CTAP2,
        transport=VirtualAuthenticatorOptions.Transport.INTERNAL,
        has_resident_key=True, has_user_verification=True, is_user_verified=True,
    )  # fmt: skip


def next_code(secret: str, steps: int = 1) -> str:
    """A code ``steps`` TOTP steps ahead (accepted as clock drift), so it is
    later than any code of now used before."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps)


class CommandDesk:
    """An operator at the dashboard (English pages)."""

    def __init__(self, driver: webdriver.Chrome, url: str, password: str = PASSWORD) -> None:
        self.driver, self.url, self.staff_password = driver, url, password

    def text(self, element: str = "") -> str:
        """The visible text of the page (or of the element with this id)."""
        try:
            if element:
                return self.driver.find_element(By.ID, element).text
            return self.driver.find_element(By.TAG_NAME, "body").text
        except WebDriverException:  # the page is being replaced
            return ""

    def wait_text(self, words: str, timeout: float = 10) -> None:
        wait_until(lambda: words in self.text(), timeout, repr(words))

    def sign_in(self, user: str, secret: str) -> None:
        self.driver.get(f"{self.url}/login?lang=en")
        self.driver.find_element(By.ID, "username").send_keys(user)
        self.driver.find_element(By.ID, "password").send_keys(self.staff_password)
        self.driver.find_element(By.ID, "code").send_keys(pyotp.TOTP(secret).now())
        self.driver.find_element(By.ID, "signin").click()
        self.wait_text("Devices")

    def add_passkey(self, label: str = "office PC") -> None:
        self.driver.get(f"{self.url}/account")
        self.driver.find_element(By.ID, "passkey-label").send_keys(label)
        self.driver.find_element(By.ID, "passkey-password").send_keys(self.staff_password)
        self.driver.find_element(By.ID, "passkey-add").click()
        self.wait_text("Passkey added.")

    def ask_unlock(self, device: str, door: str, seconds: int, reason: str) -> str:
        """Fill the device page's unlock form; the confirmation page's sentence."""
        self.driver.get(f"{self.url}/devices/{device}")
        form = self.driver.find_element(By.ID, "command-unlock")
        door_field = form.find_element(By.NAME, "door")
        if door_field.tag_name == "select":
            Select(door_field).select_by_visible_text(door)
        else:
            door_field.send_keys(door)
        seconds_field = form.find_element(By.NAME, "seconds")
        seconds_field.clear()
        seconds_field.send_keys(str(seconds))
        form.find_element(By.NAME, "reason").send_keys(reason)
        self.driver.find_element(By.ID, "ask-unlock").click()
        self.wait_text("Confirm the command")
        return self.text("command-sentence")

    def confirm_with_passkey(self) -> None:
        self.driver.find_element(By.ID, "command-passkey").click()

    def confirm_with_code(self, code: str) -> None:
        self.driver.find_element(By.ID, "command-code").send_keys(code)
        self.driver.find_element(By.ID, "command-code-send").click()

    def rows(self) -> list[tuple[str, str]]:
        """(id, text) of the command list's rows, newest first, read in one
        script: the live list may replace its rows at any moment."""
        script = ("return Array.from(document.querySelectorAll('#command-list tr[data-id]'))"
                  ".map((r) => [r.dataset.id, r.textContent]);")  # fmt: skip
        try:
            found = self.driver.execute_script(script)
        except WebDriverException:  # the page is being replaced
            return []
        return [(str(i), str(t)) for i, t in found or []]

    def newest_command(self, name: str, known: set[str]) -> str:
        """The id of the newest ``name`` row of the list not in ``known``."""
        found: list[str] = []

        def appeared() -> bool:
            found[:] = [i for i, text in self.rows() if name in text and i not in known]
            return bool(found)

        wait_until(appeared, 10, f"a new {name} in the command list")
        return found[0]

    def command_ids(self) -> set[str]:
        return {i for i, _ in self.rows()}

    def unlock_from_device_page(self, device: str, door: str, seconds: int, reason: str, *,
                                code: str = "") -> str:  # fmt: skip
        """Ask an unlock on the device page and confirm it with the passkey
        (or ``code``); returns the new command's id from the live list."""
        self.driver.get(f"{self.url}/devices/{device}")
        known = self.command_ids()
        self.ask_unlock(device, door, seconds, reason)
        if code:
            self.confirm_with_code(code)
        else:
            self.confirm_with_passkey()
        wait_until(lambda: f"/devices/{device}" in self.driver.current_url, 10,
                   "back on the device page")  # fmt: skip
        return self.newest_command("door.unlock", known)

    def state(self, command_id: str) -> str:
        """The state the live list shows for the command ("" while not shown)."""
        try:
            return str(self.driver.execute_script(
                "const r = document.querySelector(`tr[data-id='${arguments[0]}'] .command-state`);"
                "return r ? r.textContent : '';", command_id))  # fmt: skip
        except WebDriverException:
            return ""

    def wait_state(self, command_id: str, label: str, timeout: float = 15) -> None:
        wait_until(lambda: self.state(command_id) == label, timeout,
                   f"command {command_id} shown as {label}")  # fmt: skip
