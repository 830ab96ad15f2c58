"""The staff reservation pages in real headless Chromium: sign in, look at
the week grid (screenshot at 1280×800), open a member and revoke their card
from the member page. Screenshots are kept as artifacts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pyotp
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from central.api.app import create_app
from central.db.engine import Database
from central.ops.staff import StaffStore
from central.reservations.rules import BookingRules, Closure, Room
from tests.harness.booking import CARD_A, FACILITY, ROOM, BookingWorld, booking_world, today_plus
from tests.harness.browser import serve_app
from tests.harness.keys import fixed_code_key
from tests.harness.services import wait_until

PASSWORD = "correct horse battery"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, BookingWorld]]:
    db = Database(f"sqlite:///{tmp_path / 'central.db'}")
    world = booking_world(db)
    with serve_app(create_app(db, now=world.clock, code_key=fixed_code_key),
                   "the dashboard") as url:  # fmt: skip
        yield url, world
    db.close()


@pytest.fixture
def browser(chromium: Callable[..., webdriver.Chrome]) -> webdriver.Chrome:
    driver = chromium(window=(1280, 800))
    driver.set_window_size(1280, 800)
    return driver


def furnish(world: BookingWorld) -> tuple[str, str]:
    """A second room, a week of bookings, a closure; returns (member, card)."""
    world.places.put_room(Room(id="studio", facility_id=FACILITY, door_id="studio-door",
                               name="Studio", rules=BookingRules(), fee_per_slot_yen=300),
                          "test")  # fmt: skip
    member = world.member("yamada", display_name="山田 花子")
    card = world.enrol(member, CARD_A)
    other = world.member("suzuki", display_name="鈴木 一郎")
    monday = grid_monday()
    for days, hour, room, who in ((0, 10, ROOM, member), (0, 13, "studio", other),
                                  (1, 18, ROOM, other), (2, 9, "studio", member),
                                  (3, 15, ROOM, None)):  # fmt: skip
        world.bookings.create(room, today_plus(monday + days, hour),
                              today_plus(monday + days, hour + 1),
                              member_id=who, actor="test")  # fmt: skip
    world.places.add_closure(FACILITY, Closure.whole_day(today_plus(monday + 4, 0).date(),
                             "Asia/Tokyo", "holiday"), "test")  # fmt: skip
    return member, card


def grid_monday() -> int:
    """Days from today (Tokyo) to a Monday at least two days ahead: the
    furnished bookings and closure then fall in one week of the grid,
    whatever day the suite runs on."""
    days = 2
    while today_plus(days, 0).weekday() != 0:
        days += 1
    return days


def test_staff_browser_week_grid_and_revoke_from_the_member_page(
    server: tuple[str, BookingWorld], browser: webdriver.Chrome, artifacts_dir: Path
) -> None:
    url, world = server
    shots = artifacts_dir / "dashboard"
    shots.mkdir(exist_ok=True)
    member, card = furnish(world)
    secret = StaffStore(world.db).create("sato", PASSWORD, "operator")

    browser.get(f"{url}/login?lang=ja")
    browser.find_element(By.ID, "username").send_keys("sato")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "code").send_keys(pyotp.TOTP(secret).at(world.clock()))
    browser.find_element(By.ID, "signin").click()
    wait_until(lambda: "端末一覧" in (browser.page_source or ""), 10, "the fleet page")

    day = today_plus(grid_monday(), 0).date()
    browser.get(f"{url}/facilities/{FACILITY}?view=week&day={day}")
    grid = browser.find_element(By.ID, "grid").text
    assert "山田 花子" in grid and "鈴木 一郎" in grid and "当日利用" in grid and "休館日" in grid
    browser.save_screenshot(str(shots / "staff-week-grid.png"))

    browser.get(f"{url}/members?q=yamada@example.jp")
    browser.find_element(By.LINK_TEXT, "山田 花子").click()
    wait_until(lambda: f"revoke-{card}" in (browser.page_source or ""), 10, "the member page")
    browser.find_element(By.ID, f"revoke-{card}").click()
    wait_until(lambda: "まだ全端末に反映されていない失効" in (browser.page_source or ""), 10,
               "the revocation window")  # fmt: skip
    row = browser.find_element(By.ID, f"card-{card}").text
    assert "失効" in row and f"revoke-{card}" not in (browser.page_source or "")
    assert (
        "door-1"
        in browser.find_element(By.ID, "revocations")
        .find_element(By.XPATH, "following-sibling::table")
        .text
    )  # never reported a version: behind
    browser.save_screenshot(str(shots / "staff-member-revoked.png"))
    assert [c.status for c in world.members.cards(member)] == ["revoked"]


def test_staff_browser_room_edit_form_shows_errors(
    server: tuple[str, BookingWorld], browser: webdriver.Chrome, artifacts_dir: Path
) -> None:
    url, world = server
    shots = artifacts_dir / "dashboard"
    shots.mkdir(exist_ok=True)
    secret = StaffStore(world.db).create("sato", PASSWORD, "operator")
    browser.get(f"{url}/login?lang=ja")
    browser.find_element(By.ID, "username").send_keys("sato")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "code").send_keys(pyotp.TOTP(secret).at(world.clock()))
    browser.find_element(By.ID, "signin").click()
    wait_until(lambda: "端末一覧" in (browser.page_source or ""), 10, "the fleet page")

    browser.get(f"{url}/facilities/{FACILITY}")
    browser.find_element(By.ID, "rooms-link").click()
    browser.find_element(By.LINK_TEXT, "Gym A").click()
    browser.find_element(By.ID, "own_hours").click()
    monday = browser.find_element(By.ID, "hours_mon")
    monday.clear()
    monday.send_keys("09:00-12:00, 11:00-25:00")
    browser.find_element(By.ID, "save").click()
    wait_until(lambda: "form-errors" in (browser.page_source or ""), 10, "the errors")
    assert "25:00" in browser.find_element(By.ID, "error-hours_mon").text
    browser.save_screenshot(str(shots / "staff-room-edit.png"))
    assert world.places.room(ROOM).opening_hours is None
