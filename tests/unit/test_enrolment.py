"""Card enrolment's flow, session and worker with the fake central: every
refusal code, the idle wipe, cancel, late answers, words in every catalogue,
and no code or card reference in any event."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cardreader.credential import member_reference
from contracts.enrolment import ERROR_CODES
from kiosk.cards import CardSeen
from kiosk.enrolment import texts as tx
from kiosk.enrolment.flow import EnrolmentFlow, EnrolmentScreen, EnrolmentStep, Redeem, Request
from kiosk.enrolment.session import RESULT_SECONDS, EnrolmentSession
from kiosk.enrolment.worker import EnrolmentWorker
from kiosk.i18n import available_languages, translate, translations
from kiosk.touch.session import COUNTDOWN_SECONDS, IDLE_SECONDS
from tests.harness.enrolment import FakeEnrolmentCentral

KEY = b"k" * 32
UID = bytes.fromhex("0102030405060708")
REF = member_reference(KEY, UID)
CODE = "48291736"


@dataclass
class Events:
    appended: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def append(self, type: str, data: Any = None) -> None:
        self.appended.append((type, dict(data or {})))

    def types(self) -> list[str]:
        return [t for t, _ in self.appended]


@dataclass
class Rig:
    """The session over the real worker, run in the test's thread: requests
    queue until :meth:`settle`, as they would wait for the worker's thread."""

    central: FakeEnrolmentCentral = field(
        default_factory=lambda: FakeEnrolmentCentral(codes={CODE: "en"})
    )
    events: Events = field(default_factory=Events)
    now: float = 1000.0
    exits: int = 0
    pending: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.worker = EnrolmentWorker(self.central, self.events, lambda f: f(), lambda: self.now)
        self.session = EnrolmentSession(submit=self.pending.append, on_exit=self._exit)
        self.worker.results = self.session

    def _exit(self) -> None:
        self.exits += 1

    def settle(self) -> None:
        while self.pending:
            self.worker.handle(self.pending.pop(0))

    def open(self, language: str = "ja") -> None:
        self.session.open(language, False, self.now)

    def type_code(self, code: str = CODE, ok: bool = True) -> None:
        for digit in code:
            self.now += 0.5
            self.session.key(digit, self.now)
        if ok:
            self.now += 0.5
            self.session.key("ok", self.now)
        self.settle()

    def tap(self, seen: CardSeen) -> None:
        self.now += 1
        self.session.card(seen, self.now)
        self.settle()

    def idle(self, seconds: float) -> None:
        self.now += seconds
        self.session.tick(self.now)
        self.settle()


MEMBER = CardSeen(REF, "member")


def step(rig: Rig) -> EnrolmentStep:
    """The step now (a call, so the type checker does not carry it over)."""
    return rig.session.step


@pytest.fixture
def rig() -> Rig:
    return Rig()


def test_enrolment_code_then_card_enrols_the_reference_check_in_computes(rig: Rig) -> None:
    rig.open()
    assert rig.session.screen.name == EnrolmentScreen.CODE
    rig.type_code(CODE[:5], ok=False)
    assert rig.session.code_text == "4829 1○○○"  # shown, not masked
    rig.session.key("ok", rig.now + 1)  # five digits: OK does nothing
    assert step(rig) == EnrolmentStep.CODE_ENTRY and not rig.pending
    rig.type_code(CODE[5:])
    assert step(rig) == EnrolmentStep.TAP_CARD
    assert rig.session.language == "en"  # the member's preferred language
    assert rig.session.code_text == "○○○○ ○○○○"  # gone once sent
    rig.tap(MEMBER)
    assert [c.credential_ref for c in rig.central.received] == [REF]
    assert rig.central.received[0].kind == "member_card"
    assert step(rig) == EnrolmentStep.ENROLLED
    assert rig.session.screen.success
    assert rig.session.screen.title == "Your card is enrolled"
    assert rig.events.appended == [
        ("enrolment.started", {}),
        ("enrolment.enrolled", {"card_kind": "member_card"}),
    ]
    rig.session.done(rig.now)
    rig.settle()
    assert rig.exits == 1 and rig.central.cancelled == []  # a used ticket is not cancelled
    assert rig.session.language == "ja"


def test_enrolment_already_enrolled_is_success_in_its_own_words(rig: Rig) -> None:
    rig.central.already_enrolled.add(REF)
    rig.open()
    rig.type_code()
    rig.tap(CardSeen(REF, "member"))
    assert step(rig) == EnrolmentStep.ENROLLED
    assert rig.session.screen.body == "This card was already linked to your membership."


def test_enrolment_legacy_card_is_enrolled_under_its_current_reference(rig: Rig) -> None:
    # A My Number Card enrolled under j1 that this device's cache still holds:
    # the tap matched it by j1, but re-enrolling it must store its j2
    # reference (docs/cardreader.md, "Card references and migration").
    j1 = "j1-aaaaaaaa-bbbbbbbb-cccccccc-dddddddd"
    j2 = "j2-aaaaaaaa-bbbbbbbb-cccccccc-dddddddd"
    rig.open()
    rig.type_code()
    rig.tap(CardSeen(j1, "mynumber", current_ref=j2))
    assert [c.credential_ref for c in rig.central.received] == [j2]
    assert rig.central.received[0].kind == "mynumber_card"
    assert step(rig) == EnrolmentStep.ENROLLED


def test_enrolment_every_contract_code_has_plain_words() -> None:
    assert set(ERROR_CODES) <= set(tx.REFUSALS)
    for words in tx.REFUSALS.values():
        assert words.title and words.body and words.next_step


@pytest.mark.parametrize("code", sorted(ERROR_CODES))
def test_enrolment_refused_at_the_code(rig: Rig, code: str) -> None:
    rig.central.refuse_redeem = code
    rig.central.retry_after_seconds = 120
    rig.open("en")
    rig.type_code()
    words = tx.outcome_words(code)
    assert step(rig) == EnrolmentStep.REFUSED
    assert rig.session.screen.name == EnrolmentScreen.RESULT
    assert not rig.session.screen.success
    assert rig.session.screen.title == words.title
    assert rig.session.screen.next_step == translate("en", words.next_step, minutes=2)
    assert rig.events.appended == [("enrolment.refused", {"code": code})]
    assert rig.session.can_retry == (code == "code_invalid")
    rig.session.done(rig.now)
    rig.settle()
    assert rig.exits == 1 and rig.central.cancelled == []  # no ticket was held


@pytest.mark.parametrize("code", sorted(ERROR_CODES))
def test_enrolment_refused_at_the_card_cancels_the_ticket(rig: Rig, code: str) -> None:
    rig.central.refuse_enrol = code
    rig.open()
    rig.type_code()
    ticket = next(iter(rig.central.tickets))
    rig.tap(MEMBER)
    assert step(rig) == EnrolmentStep.REFUSED
    assert rig.session.screen.body == translate("en", tx.outcome_words(code).body)
    assert rig.events.appended[-1] == ("enrolment.refused", {"code": code})
    assert step(rig) != EnrolmentStep.ENROLLED  # never "enrolled" without central's yes
    rig.idle(RESULT_SECONDS)  # the result goes by itself
    assert rig.exits == 1
    assert rig.central.cancelled == [ticket]


def test_enrolment_central_unreachable_says_try_later(rig: Rig) -> None:
    rig.central.unreachable = True
    rig.open()
    rig.type_code()
    assert step(rig) == EnrolmentStep.REFUSED
    assert rig.session.screen.body == "現在、登録サービスを利用できません。"
    assert rig.events.appended == [("enrolment.refused", {"code": "central_unreachable"})]


def test_enrolment_mistyped_code_can_be_entered_again(rig: Rig) -> None:
    rig.open()
    rig.type_code("11112222")
    assert rig.session.can_retry
    rig.session.retry(rig.now)
    assert rig.session.screen.name == EnrolmentScreen.CODE
    rig.type_code()
    assert step(rig) == EnrolmentStep.TAP_CARD


@pytest.mark.parametrize(
    ("seen", "notice"),
    [
        (CardSeen(None, "unknown"), tx.UNSUPPORTED_CARD),
        (CardSeen(None, "unreadable", readable=False), tx.UNREADABLE_CARD),
        (CardSeen("cr1_not-a-reference", "member"), tx.UNSUPPORTED_CARD),
    ],
)
def test_enrolment_unusable_card_is_explained_and_another_may_be_tapped(
    rig: Rig, seen: CardSeen, notice: str
) -> None:
    rig.open()
    rig.type_code()
    rig.tap(seen)
    assert step(rig) == EnrolmentStep.TAP_CARD
    assert rig.session.card_notice == translate("en", notice)
    assert rig.central.received == []
    rig.tap(MEMBER)  # the right card, tapped after
    assert step(rig) == EnrolmentStep.ENROLLED
    assert rig.session.card_notice == ""


def test_enrolment_card_before_the_code_does_nothing(rig: Rig) -> None:
    rig.open()
    rig.tap(MEMBER)
    assert step(rig) == EnrolmentStep.CODE_ENTRY
    assert rig.central.received == [] and rig.events.appended == []


def test_enrolment_idle_wipes_everything_and_cancels_the_ticket(rig: Rig) -> None:
    rig.open("en")
    rig.session.toggle_large_text(rig.now)
    rig.type_code()
    ticket = next(iter(rig.central.tickets))
    rig.idle(IDLE_SECONDS + 1)
    assert rig.session.countdown is not None and rig.exits == 0
    rig.idle(COUNTDOWN_SECONDS)
    assert rig.exits == 1
    assert rig.central.cancelled == [ticket]
    assert (rig.session.language, rig.session.large_text) == ("ja", False)
    assert step(rig) == EnrolmentStep.DONE


def test_enrolment_idle_on_the_code_wipes_the_typed_digits(rig: Rig) -> None:
    rig.open()
    rig.type_code(CODE[:6], ok=False)
    rig.idle(IDLE_SECONDS + COUNTDOWN_SECONDS)
    assert rig.exits == 1 and rig.session.flow.code == ""
    rig.open()
    assert rig.session.code_text == "○○○○ ○○○○"


def test_enrolment_cancel_cancels_the_ticket_at_central(rig: Rig) -> None:
    rig.open()
    rig.type_code()
    ticket = next(iter(rig.central.tickets))
    rig.session.cancel(rig.now)
    rig.settle()
    assert rig.central.cancelled == [ticket] and rig.exits == 1
    assert rig.central.tickets == {}


def test_enrolment_answer_for_a_person_who_left_is_dropped(rig: Rig) -> None:
    rig.open()
    rig.type_code(ok=False)
    rig.session.key("ok", rig.now + 1)
    redeem = rig.pending.pop()  # the answer is still on its way...
    rig.session.cancel(rig.now + 2)  # ...when the person leaves
    rig.worker.handle(redeem)
    rig.settle()
    assert step(rig) == EnrolmentStep.DONE
    assert len(rig.central.cancelled) == 1  # the late ticket does not linger
    assert rig.events.appended == []


def test_enrolment_language_without_catalogue_keeps_the_screen_language(rig: Rig) -> None:
    rig.central.codes = {CODE: "fr"}  # not a registered language
    rig.open("ja")
    rig.type_code()
    assert rig.session.language == "ja"


def test_enrolment_member_language_tag_maps_to_a_registry_code(rig: Rig) -> None:
    rig.central.codes = {CODE: "en-GB"}
    rig.open("ja")
    rig.type_code()
    assert rig.session.language == "en"


def test_enrolment_never_puts_the_code_or_the_reference_in_events_or_reprs(rig: Rig) -> None:
    rig.open()
    rig.type_code()
    rig.tap(MEMBER)
    dumped = json.dumps(rig.events.appended)
    assert CODE not in dumped and REF not in dumped
    assert CODE not in repr(Redeem(1, CODE)) and CODE not in repr(rig.session.flow)
    assert REF not in repr(rig.session.flow)


def test_enrolment_flow_starts_clean() -> None:
    flow = EnrolmentFlow()
    steps = [flow.step]
    assert flow.start() == []
    steps.append(flow.step)
    assert steps == [EnrolmentStep.DONE, EnrolmentStep.CODE_ENTRY]


def test_enrolment_words_in_every_catalogue() -> None:
    source = (Path(__file__).resolve().parents[2] / "kiosk/enrolment/texts.py").read_text()
    ids = set(re.findall(r'N_\(\s*"((?:[^"\\]|\\.)*)"\s*\)', source))
    assert len(ids) > 30
    assert {"ja", "en"} <= set(available_languages())
    for language in available_languages():
        catalogue = translations(language)
        for message in ids:
            translated = catalogue.gettext(message)
            assert translated, f"{language} lacks {message!r}"
            if language == "ja":
                assert translated != message, f"ja has no translation of {message!r}"
