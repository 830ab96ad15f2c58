"""Both touchscreens' sessions with a staff call: the screen follows
central's answers, the person leaving ends the call, and with no connection
the screen says where to go."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kiosk.checkin.access import Policy
from kiosk.checkin.service import CheckinService
from kiosk.checkin.session import CheckinScreen, CheckinSession
from kiosk.issuance.flow import IssuanceFlow, IssuanceStep
from kiosk.touch.session import COUNTDOWN_SECONDS
from kiosk.touch.staffcall import StaffCaller
from sync.config import StaffCallSection
from sync.outbox import Outbox
from sync.store import Store, open_store
from tests.unit.test_checkin import KEY, NOW, FakeLock, FakeReservations
from tests.unit.test_staffcall import CALL, FakeLink, remote

TOKYO = ZoneInfo("Asia/Tokyo")
PLACE = StaffCallSection(where="1F 総合案内", phone="0xx-xxx-xxxx")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path / "d.db") as opened:
        yield opened


def types(store: Store) -> list[str]:
    return [r["type"] for r in store.query("SELECT type FROM outbox ORDER BY seq")]


def shown(session: CheckinSession) -> CheckinScreen:
    return session.screen.name  # read through a call: mypy keeps no narrowing


def step(flow: IssuanceFlow) -> IssuanceStep:
    return flow.screen.name


def last(requests: list[object]) -> object:
    return requests[-1]  # read through a call: mypy keeps no narrowing


def checkin(store: Store, link: FakeLink, settings: StaffCallSection = PLACE) -> CheckinSession:
    outbox = Outbox(store)
    service = CheckinService(
        door="room-a", facility="gym", policy=Policy(), reservations=FakeReservations(),
        lock=FakeLock(), outbox=outbox, code_key=KEY, now=lambda: NOW, clock_trusted=lambda: True,
    )  # fmt: skip
    staff = StaffCaller(outbox, link, settings, "checkin", door="room-a", new_id=lambda: CALL)
    return CheckinSession(service, {"room-a": "Room A"}, TOKYO, staff=staff)


def test_checkin_staff_call_alerted_on_the_way_then_done(store: Store) -> None:
    link = FakeLink()
    session = checkin(store, link)
    session.call_staff(0.0)
    assert session.screen.name == CheckinScreen.STAFF
    assert session.screen.title == "係員を呼んでいます…"
    link.state = remote("open")
    session.tick(1.0)
    assert session.screen.title == "係員を呼びました。ここでお待ちください。"
    link.state = remote("acknowledged")
    session.tick(2.0)
    assert session.screen.title == "係員が向かっています。ここでお待ちください。"
    session.tick(200.0)  # waiting for staff is not being idle
    assert session.screen.name == CheckinScreen.STAFF and session.countdown is None
    link.state = None  # staff marked it done
    session.tick(201.0)
    assert shown(session) == CheckinScreen.ATTRACT
    assert types(store) == ["kiosk.staff_called"]


def test_checkin_person_leaving_ends_the_call(store: Store) -> None:
    link = FakeLink(state=None)
    session = checkin(store, link, StaffCallSection(wait_seconds=60))
    session.call_staff(0.0)
    link.state = remote("open")
    session.tick(1.0)
    session.tick(61.0)  # idle past wait_seconds: "are you still there?"
    assert session.countdown is not None
    session.tick(62.0 + COUNTDOWN_SECONDS)
    assert session.screen.name == CheckinScreen.ATTRACT
    assert types(store) == ["kiosk.staff_called", "kiosk.staff_call_ended"]


def test_checkin_back_ends_the_call(store: Store) -> None:
    session = checkin(store, FakeLink())
    session.call_staff(0.0)
    session.back(1.0)
    data = json.loads(store.query("SELECT data FROM outbox ORDER BY seq DESC")[0]["data"])
    assert data == {"call": CALL, "reason": "back"}


def test_checkin_offline_says_where_to_go(store: Store) -> None:
    session = checkin(store, FakeLink(up=False))
    session.call_staff(0.0)
    assert session.screen.title == "係員を呼び出せませんでした。"
    assert session.screen.body == "1F 総合案内へお越しください。"
    assert session.screen.next_step == "または 0xx-xxx-xxxx へお電話ください。"
    session.choose_language("en", 1.0)
    session.call_staff(2.0)
    assert session.screen.title == "Staff could not be reached."
    assert session.screen.body == "Please go to 1F 総合案内."  # the place as configured
    # Still recorded: the call reaches central when the device is back.
    assert types(store)[0] == "kiosk.staff_called"


def test_checkin_without_caller_never_pretends(store: Store) -> None:
    session = checkin(store, FakeLink())
    session.staff = None
    session.call_staff(0.0)
    assert session.screen.title == "係員を呼び出せませんでした。"
    assert session.screen.body.startswith("受付へ")


def test_issuance_staff_call_returns_to_the_step(store: Store) -> None:
    link = FakeLink()
    staff = StaffCaller(Outbox(store), link, PLACE, "issuance", new_id=lambda: CALL)
    flow = IssuanceFlow(lambda _r: None, TOKYO, staff=staff)
    flow.start(0.0)
    assert step(flow) == IssuanceStep.LANGUAGE
    flow.call_staff(1.0)
    assert step(flow) == IssuanceStep.STAFF and flow.screen.title == "係員を呼んでいます…"
    link.state = remote("acknowledged")
    flow.tick(2.0)
    assert flow.screen.title == "係員が向かっています。ここでお待ちください。"
    link.state = None
    flow.tick(3.0)
    assert step(flow) == IssuanceStep.LANGUAGE
    flow.call_staff(4.0)  # a new call; the person leaves with Back
    flow.back(5.0)
    assert step(flow) == IssuanceStep.LANGUAGE
    assert types(store) == ["kiosk.staff_called", "kiosk.staff_called", "kiosk.staff_call_ended"]


def test_issuance_staff_call_while_the_session_opens_starts_again_from_the_card(
    store: Store,
) -> None:
    """A call during *verifying*: the answer that comes meanwhile is dropped
    and its session closed; back from the staff screen, the card is read
    again (the PIN is asked again), never a wait screen that waits forever."""
    from datetime import UTC, datetime

    from contracts.issuance import SessionOut
    from kiosk.issuance.model import (
        CardCheck,
        CardKind,
        CloseSession,
        OpenSession,
        ReadCard,
        SessionResult,
        SessionStatus,
    )

    requests: list[object] = []
    staff = StaffCaller(Outbox(store), FakeLink(), PLACE, "issuance", new_id=lambda: CALL)
    flow = IssuanceFlow(requests.append, TOKYO, staff=staff)
    flow.start(0.0)
    flow.choose_language("ja", 1.0)
    flow.card_placed(2.0)
    flow.card_checked(flow.generation, CardCheck(CardKind.MYNUMBER, tries_left=3))
    for key in "1234":
        flow.key(key, 3.0 + int(key))
    flow.key("ok", 9.0)
    assert step(flow) == IssuanceStep.VERIFYING and isinstance(requests[-1], OpenSession)
    flow.call_staff(10.0)
    opened = SessionOut(session_id="s-1", expires_at=datetime(2026, 12, 6, tzinfo=UTC), kinds=[])
    flow.session_result(flow.generation, SessionResult(SessionStatus.OPEN, opened))
    assert last(requests) == CloseSession(flow.generation, "s-1")
    assert step(flow) == IssuanceStep.STAFF
    flow.back(11.0)
    assert step(flow) == IssuanceStep.CHECKING
    assert last(requests) == ReadCard(flow.generation) and flow.pin_dots == "○○○○"
