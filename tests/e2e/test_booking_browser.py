"""The residents' booking site in real headless Chromium (Selenium): a
resident signs in with the code from the mail (a local SMTP server), books a
slot, sees the reservation code, cancels. Every page is checked with axe-core
(no serious or critical violation) and photographed at 360x740 and 1280x800
under tests/artifacts/booking/."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from central.db.engine import Database
from tests.harness.axe import axe_script, serious_violations
from tests.harness.booking import ROOM, BookingWorld, today_plus
from tests.harness.booking_site import Mailbox, site_app, site_settings, smtp_server
from tests.harness.browser import serve_app
from tests.harness.services import free_port, wait_until

pytestmark = pytest.mark.e2e
SIZES = ((360, 740), (1280, 800))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, BookingWorld, Mailbox]]:
    db = Database(f"sqlite:///{tmp_path / 'central.db'}")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with smtp_server() as (mailbox, smtp_port):
        app, world = site_app(db, site_settings(smtp_port, public_url=url))
        with serve_app(app, "the booking site", port):
            yield url, world, mailbox
    db.close()


@pytest.fixture
def browser(chromium: Callable[..., webdriver.Chrome]) -> webdriver.Chrome:
    driver = chromium(window=(1280, 800), flags=("--hide-scrollbars", "--lang=ja"))
    driver.set_script_timeout(30)
    return driver


class Pages:
    """Checks and photographs every page the resident sees."""

    def __init__(self, driver: webdriver.Chrome, shots: Path) -> None:
        self.driver, self.shots = driver, shots
        self.axe = axe_script()
        self.problems: dict[str, list[dict[str, object]]] = {}

    def check(self, name: str) -> None:
        found = serious_violations(self.driver, self.axe)
        if found:
            self.problems[name] = found
        for width, height in SIZES:
            self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": height, "deviceScaleFactor": 1,
                "mobile": width < 600})  # fmt: skip
            overflow = self.driver.execute_script(
                "return document.documentElement.scrollWidth > window.innerWidth"
            )
            if overflow:
                self.problems.setdefault(name, []).append({"id": f"wider-than-{width}px"})
            self.driver.save_screenshot(str(self.shots / f"{name}-{width}.png"))
        self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    def click(self, element_id: str) -> None:
        self.driver.find_element(By.ID, element_id).click()


def test_booking_browser_sign_in_book_and_cancel(
    server: tuple[str, BookingWorld, Mailbox], browser: webdriver.Chrome, artifacts_dir: Path
) -> None:
    url, world, mailbox = server
    member = world.member("aki")
    shots = artifacts_dir / "booking"
    shots.mkdir(exist_ok=True)
    pages = Pages(browser, shots)

    def source() -> str:
        return browser.page_source or ""

    browser.get(f"{url}/booking/sign-in")
    pages.check("sign-in")
    browser.find_element(By.ID, "email").send_keys("aki@example.jp")
    pages.click("send")
    wait_until(lambda: 'id="code"' in source(), 10, "the code form")
    pages.check("check-mail")
    _link, code = Mailbox.sign_in(mailbox.wait(1))
    browser.find_element(By.ID, "code").send_keys(code)
    pages.click("code-submit")
    wait_until(lambda: "施設一覧" in source() and "Sports centre" in source(), 10, "facilities")
    pages.check("facilities")

    browser.find_element(By.LINK_TEXT, "Sports centre").click()
    wait_until(lambda: 'id="day"' in source(), 10, "the facility's page")
    pages.check("facility")
    day = today_plus(3, 0).date().isoformat()
    browser.get(f"{url}/booking/rooms/{ROOM}?day={day}")
    pages.check("room")
    browser.find_element(By.CSS_SELECTOR, "a.slot").click()
    wait_until(lambda: 'id="confirm"' in source(), 10, "the booking form")
    pages.check("book")
    pages.click("confirm")
    wait_until(lambda: 'id="reservation-code"' in source(), 10, "the confirmation")
    shown = browser.find_element(By.ID, "reservation-code").text
    assert re.fullmatch(r"\d{6}", shown)
    assert shown in Mailbox.text(mailbox.wait(2))
    pages.check("confirmed")

    browser.get(f"{url}/booking/my")
    [booking] = world.bookings.member_bookings(member)
    pages.check("my-bookings")
    pages.click(f"cancel-{booking.id}")
    wait_until(lambda: 'role="status"' in source(), 10, "the cancellation notice")
    pages.check("cancelled")
    assert world.bookings.get(booking.id).status == "cancelled"

    browser.get(f"{url}/booking/cards")
    pages.click("enrol")
    wait_until(lambda: 'id="enrolment-code"' in source(), 10, "the enrolment code")
    pages.check("cards-code")
    browser.get(f"{url}/booking/my?lang=en")
    pages.check("my-bookings-en")
    assert not pages.problems, pages.problems
