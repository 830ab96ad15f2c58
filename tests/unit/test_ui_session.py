"""The touchscreen's view model, without a window: screens, idle timeout with
countdown, keypad (masking, double taps, wipe), language and reset."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from contracts.reservations_hash import code_hash as reservation_code_hash
from kiosk.checkin import messages as m
from kiosk.checkin.access import Policy, Reservation
from kiosk.checkin.service import CheckinService
from kiosk.checkin.session import RESULT_SECONDS, CheckinScreen, CheckinSession
from kiosk.touch.session import COUNTDOWN_SECONDS, IDLE_SECONDS
from sync.outbox import Outbox
from sync.store import open_store
from tests.unit.test_checkin import KEY, NOW, FakeLock, FakeReservations

TOKYO = ZoneInfo("Asia/Tokyo")


def shown(session: CheckinSession) -> CheckinScreen:
    """The screen, read through a call: mypy would otherwise keep an asserted
    screen narrowed across the actions that change it."""
    return session.screen.name


@pytest.fixture
def session(tmp_path: Path) -> Iterator[CheckinSession]:
    code = reservation_code_hash(KEY, "gym", "123456")
    booking = Reservation("res-1", "room-a", NOW - timedelta(minutes=5), NOW + timedelta(hours=1))
    reservations = FakeReservations(by_ref={"cr1_ok": [booking]}, by_code={code: [booking]})
    with open_store(tmp_path / "d.db") as store:
        service = CheckinService(
            door="room-a", facility="gym", policy=Policy(), reservations=reservations,
            lock=FakeLock(), outbox=Outbox(store), code_key=KEY, now=lambda: NOW,
            clock_trusted=lambda: True,
        )  # fmt: skip
        changes: list[str] = []
        yield CheckinSession(
            service, {"room-a": "Room A"}, TOKYO, on_change=lambda s: changes.append(s.screen.name)
        )


def test_session_card_shows_result_then_returns(session: CheckinSession) -> None:
    session.card_presented("cr1_ok", now=100.0)
    assert shown(session) == CheckinScreen.RESULT and session.screen.success
    assert "Room A" in session.screen.body
    session.tick(100.0 + RESULT_SECONDS - 0.1)
    assert shown(session) == CheckinScreen.RESULT
    session.tick(100.0 + RESULT_SECONDS)
    assert shown(session) == CheckinScreen.ATTRACT and session.last_result is None


def test_session_keypad_masks_and_submits(session: CheckinSession) -> None:
    session.open_keypad(0.0)
    for i, digit in enumerate("123456"):
        session.key(digit, 1.0 + i)
    assert session.code_dots == "●●●●●●"
    session.key("7", 10.0)  # a seventh digit is ignored
    session.key("ok", 11.0)
    assert shown(session) == CheckinScreen.RESULT and session.screen.success
    assert session.code_dots == "○○○○○○"


def test_session_keypad_ignores_double_tap_and_clears(session: CheckinSession) -> None:
    session.open_keypad(0.0)
    session.key("1", 1.0)
    session.key("1", 1.05)  # panel double event
    session.key("1", 1.5)
    assert session.code_dots.count("●") == 2
    session.key("clear", 2.0)
    assert session.code_dots.count("●") == 1
    session.key("ok", 3.0)  # too short: stays on the keypad
    assert shown(session) == CheckinScreen.KEYPAD


def test_session_idle_countdown_then_wipe(session: CheckinSession) -> None:
    session.open_keypad(0.0)
    session.key("9", 0.5)
    session.choose_language("en", 0.6)
    session.open_keypad(0.7)
    session.key("4", 0.8)
    session.tick(0.8 + IDLE_SECONDS + 1)
    assert session.countdown == pytest.approx(COUNTDOWN_SECONDS - 1)
    session.activity(0.8 + IDLE_SECONDS + 2)  # "continue"
    assert session.countdown is None and session.code_dots.count("●") == 1
    session.tick(0.8 + 2 * IDLE_SECONDS + COUNTDOWN_SECONDS + 2)
    assert shown(session) == CheckinScreen.ATTRACT
    assert session.code_dots.count("●") == 0
    assert session.language == "ja"


def test_session_staff_call_and_language(session: CheckinSession) -> None:
    session.choose_language("en", 0.0)
    session.call_staff(1.0)
    assert shown(session) == CheckinScreen.STAFF
    # No way to reach staff in this fixture: the screen does not pretend.
    assert session.screen.title == "Staff could not be reached."
    session.choose_language("xx", 2.0)  # unknown language: unchanged
    assert session.language == "en"


def test_session_card_unusable(session: CheckinSession) -> None:
    session.card_unusable(readable=False, now=0.0)
    assert shown(session) == CheckinScreen.RESULT and not session.screen.success
    assert session.screen.title == "カードを読めませんでした"


def test_session_more_time_doubles_idle_and_countdown(session: CheckinSession) -> None:
    session.open_keypad(now=0.0)
    session.toggle_more_time(now=0.0)
    session.tick(IDLE_SECONDS + 1)
    assert session.countdown is None  # still within the doubled idle time
    session.tick(2 * IDLE_SECONDS + 1)
    assert session.countdown == pytest.approx(2 * COUNTDOWN_SECONDS - 1)
    session.tick(2 * (IDLE_SECONDS + COUNTDOWN_SECONDS) - 1)
    assert shown(session) == CheckinScreen.KEYPAD
    session.tick(2 * (IDLE_SECONDS + COUNTDOWN_SECONDS))
    assert shown(session) == CheckinScreen.ATTRACT
    assert not session.more_time  # the next person starts with the standard time


def test_session_more_time_from_the_countdown_answers_it(session: CheckinSession) -> None:
    session.open_keypad(now=0.0)
    session.tick(IDLE_SECONDS + 5)
    assert session.countdown is not None
    session.toggle_more_time(now=IDLE_SECONDS + 5)
    assert session.countdown is None and session.more_time
    session.tick(IDLE_SECONDS + 5 + IDLE_SECONDS + 1)
    assert session.countdown is None  # the idle time counts from the touch, doubled


def test_session_high_contrast_and_large_text_forgotten_on_reset(session: CheckinSession) -> None:
    session.toggle_high_contrast(now=1.0)
    session.toggle_large_text(now=1.0)
    assert session.high_contrast and session.large_text
    session.reset()
    assert not session.high_contrast and not session.large_text and not session.more_time


@dataclass
class Closed:
    door_closed: bool = True

    def closed(self, door: str) -> bool:
        return self.door_closed


def test_session_attract_says_entrance_closed_while_in_lockdown(session: CheckinSession) -> None:
    source = Closed()
    session.service.lockdown = source
    session.tick(1.0)
    assert session.entrance_closed is True
    source.door_closed = False
    session.tick(2.0)
    assert session.entrance_closed is False


def test_session_store_full_notice_follows_the_disk(session: CheckinSession) -> None:
    full = [True]
    seen: list[bool] = []
    session.storage_full = lambda: full[0]
    session.on_change = lambda s: seen.append(s.store_full)
    session.tick(0.0)  # on the attract screen too
    assert session.store_full and seen == [True]
    assert session.t(m.STORE_FULL_NOTICE).startswith("この端末の記録領域がいっぱいです。")
    session.choose_language("en", 1.0)
    assert session.t(m.STORE_FULL_NOTICE) == "This terminal's storage is full. Please tell staff."
    session.tick(2.0)
    assert seen == [True, True]  # the language change; no change from the disk
    full[0] = False
    session.tick(3.0)
    assert not session.store_full and seen[-1] is False
