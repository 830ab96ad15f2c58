"""The issuance flow and orchestrator with fakes: every screen and every
bad-input case, the money rule and the PIN's lifetime."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cardreader.identify import CardKind
from kiosk.errors import CentralRefused, CentralUnreachable
from kiosk.issuance.flow import IssuanceStep
from kiosk.issuance.payment import Payment, PaymentUnavailable, SimulatedTerminal
from kiosk.issuance.printing import PrinterState
from tests.unit.issuance_fakes import FakeCard, JammingPrinter, Rig, make_rig


def order_two_residence_copies(rig: Rig) -> None:
    rig.to_pin()
    rig.type_pin("1234")
    assert rig.step() == IssuanceStep.KINDS
    rig.flow.choose_kind("juminhyo", rig.at())
    assert rig.step() == IssuanceStep.OPTIONS
    rig.flow.next(rig.at())
    rig.flow.change_copies(+1, rig.at())
    rig.flow.next(rig.at())
    assert rig.step() == IssuanceStep.CONFIRM and rig.flow.total_yen == 400
    rig.flow.next(rig.at())
    rig.run_deferred()


def test_issuance_flow_prints_and_waits_for_the_card(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    order_two_residence_copies(rig)
    assert rig.step() == IssuanceStep.TAKE_CARD
    assert sorted(p.name for p in rig.printer.spool.glob("*.pdf")) == [
        "job-000001.pdf", "job-000002.pdf",
    ]  # fmt: skip
    assert rig.payment.balance() == 400
    assert rig.events.of("issuance.issued") == [{"type": "juminhyo", "copies": 2, "fee_yen": 400}]
    assert [o.status for _, o in rig.central.outcomes] == ["printed"]
    assert rig.central.sessions == {}  # closed after the purchase
    played = rig.sound.played
    rig.flow.tick(rig.at(5))
    assert rig.sound.played > played  # the chime repeats until the card is taken
    rig.flow.card_removed(rig.at())
    assert rig.step() == IssuanceStep.THANKS
    rig.flow.tick(rig.at(30))
    assert rig.step() == IssuanceStep.ATTRACT and rig.flow.language == "ja"


def test_issuance_flow_options_default_to_least_data(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    rig.to_pin()
    rig.type_pin("1234")
    rig.flow.choose_kind("juminhyo", rig.at())
    assert rig.flow.options == {"household": "self", "relationship": "false", "honseki": "false"}
    rig.flow.set_option("household", "all", rig.at())
    rig.flow.set_option("honseki", "maybe", rig.at())  # not a value of the option
    assert rig.flow.options["household"] == "all" and rig.flow.options["honseki"] == "false"


def test_issuance_flow_wrong_pin_shows_new_count_and_waits(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    rig.to_pin()
    assert rig.step() == IssuanceStep.PIN and rig.flow.tries_left == 3
    rig.type_pin("9999")
    assert rig.step() == IssuanceStep.PIN and rig.flow.tries_left == 2 and rig.flow.pin_error
    assert rig.card.auth_calls == 1  # never an automatic retry
    assert not rig.flow.has_pin and rig.flow.pin_dots == "○○○○"
    rig.type_pin("9999")
    assert rig.flow.tries_left == 1 and rig.flow.last_try
    rig.type_pin("1234")
    assert rig.step() == IssuanceStep.KINDS
    assert rig.events.of("issuance.pin_wrong") == [{"tries_left": 2}, {"tries_left": 1}]


def test_issuance_flow_last_wrong_pin_blocks_and_sends_to_counter(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, card=FakeCard(tries=1))
    rig.to_pin()
    assert rig.flow.last_try
    rig.type_pin("0000")
    assert rig.flow.screen.notice == "pin_blocked"
    assert "counter" in rig.flow.screen.next_step


@pytest.mark.parametrize(
    ("card", "notice"),
    [
        (FakeCard(tries=0), "pin_blocked"),
        (FakeCard(expired=True), "card_expired"),
        (FakeCard(kind=CardKind.FELICA), "not_mynumber"),
    ],
)
def test_issuance_flow_card_checked_before_the_pin(
    tmp_path: Path, card: FakeCard, notice: str
) -> None:
    rig = make_rig(tmp_path, card=card)
    rig.to_pin()
    assert rig.step() == IssuanceStep.NOTICE and rig.flow.screen.notice == notice
    assert card.auth_calls == 0  # no PIN sent
    assert rig.events.of("issuance.refused") == [{"reason": notice}]
    rig.flow.back(rig.at())
    assert rig.step() == IssuanceStep.TAKE_CARD  # the card is still on the reader


@pytest.mark.parametrize(
    ("code", "notice"),
    [
        ("certificate_revoked", "certificate_revoked"),
        ("resident_unknown", "resident_unknown"),
        ("use_counter", "use_counter"),
        ("outside_hours", "outside_hours"),
        ("signature_invalid", "service_error"),
    ],
)
def test_issuance_flow_central_refusals_have_their_notice(
    tmp_path: Path, code: str, notice: str
) -> None:
    rig = make_rig(tmp_path)
    opens = datetime(2030, 1, 6, 0, 30, tzinfo=UTC)
    rig.central.fail_next("open_session", CentralRefused(code, opens_at=opens))
    rig.to_pin()
    rig.type_pin("1234")
    assert rig.flow.screen.notice == notice
    assert rig.events.of("issuance.refused") == [{"reason": code}]
    if code == "outside_hours":
        assert "2030-01-06 09:30" in rig.flow.screen.body  # in the kiosk's time zone
    if code == "use_counter":
        assert rig.flow.screen.body == "Certificates for you cannot be issued at this machine."


def test_issuance_flow_central_unreachable_at_session(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    rig.central.fail_next("challenge", CentralUnreachable("down"))
    rig.to_pin()
    rig.type_pin("1234")
    assert rig.flow.screen.notice == "central_unreachable"
    assert rig.events.of("issuance.central_unreachable") == [{"step": "session"}]
    assert rig.card.auth_calls == 0


def test_issuance_flow_payment_declined_charges_nothing(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    rig.payment.script.append("declined")
    order_two_residence_copies(rig)
    assert rig.flow.screen.notice == "payment_declined"
    assert rig.payment.balance() == 0 and not list(rig.printer.spool.glob("*.pdf"))
    assert rig.events.of("issuance.payment_declined") == [
        {"type": "juminhyo", "copies": 2, "fee_yen": 400}
    ]


@pytest.mark.parametrize("state", [PrinterState.OUT_OF_PAPER, PrinterState.JAMMED])
def test_issuance_flow_printer_checked_before_charging(tmp_path: Path, state: PrinterState) -> None:
    rig = make_rig(tmp_path)
    rig.printer.set_state(state)
    order_two_residence_copies(rig)
    assert rig.flow.screen.notice == f"printer_{state.value}"
    assert rig.payment.ledger == [] and rig.central.orders == {}
    assert rig.events.of("issuance.printer_unavailable")[0]["reason"] == state.value


def test_issuance_flow_jam_while_printing_cancels_and_refunds(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, printer=JammingPrinter(tmp_path / "spool", good_jobs=1))
    order_two_residence_copies(rig)
    assert rig.flow.screen.notice == "print_failed"
    assert "400 yen has been refunded" in rig.flow.screen.body
    assert rig.payment.balance() == 0 and [k for k, *_ in rig.payment.ledger][-1] == "refunded"
    assert not list(rig.printer.spool.glob("*.pdf"))  # jobs cancelled
    assert "issuance.refunded" in rig.events.types() and "issuance.issued" not in rig.events.types()
    assert [o.status for _, o in rig.central.outcomes] == ["refunded"]


@pytest.mark.parametrize(
    "error", [CentralUnreachable("down"), CentralRefused("order_state")], ids=["down", "refused"]
)
def test_issuance_flow_confirm_failure_voids_the_payment(
    tmp_path: Path, error: CentralUnreachable | CentralRefused
) -> None:
    rig = make_rig(tmp_path)
    rig.central.fail_next("confirm", error)
    order_two_residence_copies(rig)
    expected = "central_unreachable" if isinstance(error, CentralUnreachable) else "service_error"
    assert rig.flow.screen.notice == expected
    assert [k for k, *_ in rig.payment.ledger] == ["captured", "voided"]
    assert len(rig.events.of("issuance.voided")) == 1
    assert [o.status for _, o in rig.central.outcomes] == ["voided"]


def test_issuance_flow_central_unreachable_at_order_charges_nothing(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    rig.central.fail_next("create_order", CentralUnreachable("down"))
    order_two_residence_copies(rig)
    assert rig.flow.screen.notice == "central_unreachable" and rig.payment.ledger == []


STEPS = [
    IssuanceStep.CHECKING,
    IssuanceStep.PIN,
    IssuanceStep.VERIFYING,
    IssuanceStep.KINDS,
    IssuanceStep.OPTIONS,
    IssuanceStep.COPIES,
    IssuanceStep.CONFIRM,
]


@pytest.mark.parametrize("step", STEPS)
def test_issuance_flow_card_removed_aborts_and_wipes(tmp_path: Path, step: IssuanceStep) -> None:
    rig = make_rig(tmp_path, deferred=True)
    flow = rig.flow

    def begin() -> None:
        flow.start(rig.at())
        flow.choose_language("en", rig.at())
        flow.card_placed(rig.at())

    def type_digits(digits: str, ok: bool = False) -> None:
        for digit in digits:
            flow.key(digit, rig.at())
        if ok:
            flow.key("ok", rig.at())

    walk: list[Callable[[], None]] = [
        begin,
        rig.run_deferred,
        lambda: type_digits("12"),
        lambda: type_digits("34", ok=True),
        rig.run_deferred,
        lambda: flow.choose_kind("juminhyo", rig.at()),
        lambda: flow.next(rig.at()),
        lambda: flow.next(rig.at()),
    ]
    for action in walk:
        if flow.screen.name == step and (step != IssuanceStep.PIN or flow.has_pin):
            break
        action()
    assert flow.screen.name == step
    flow.card_removed(rig.at())
    rig.card.present = False
    rig.run_deferred()  # work already asked for comes back and is dropped
    assert flow.screen.notice == "card_removed"
    assert not flow.has_pin and flow.kind is None and flow.options == {}
    assert rig.central.sessions == {}  # any session opened is closed at central
    assert rig.events.of("issuance.aborted") == [{"step": step, "reason": "card_removed"}]
    assert rig.payment.ledger == []
    flow.tick(rig.at(30))
    assert flow.screen.name == IssuanceStep.ATTRACT


def test_issuance_flow_idle_timeout_wipes_pin_and_choices(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    rig.to_pin()
    rig.flow.key("1", rig.at())
    rig.flow.tick(rig.at(35))
    assert rig.flow.countdown is not None and rig.flow.has_pin
    rig.flow.tick(rig.at(20))
    # Wiped; the card still on the reader is asked for back (with the sound).
    assert rig.step() == IssuanceStep.TAKE_CARD and not rig.flow.has_pin
    assert rig.events.of("issuance.aborted") == [{"step": "pin", "reason": "idle"}]
    rig.flow.card_removed(rig.at())
    assert rig.step() == IssuanceStep.THANKS


def test_issuance_flow_idle_after_session_closes_it(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    rig.to_pin()
    rig.type_pin("1234")
    rig.flow.choose_kind("inkan", rig.at())
    assert rig.step() == IssuanceStep.COPIES and rig.central.sessions
    rig.flow.tick(rig.at(60))
    assert rig.step() == IssuanceStep.TAKE_CARD and rig.central.sessions == {}
    assert rig.flow.kind is None


def test_issuance_flow_double_tap_is_one_digit(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    rig.to_pin()
    rig.flow.key("5", 2000.0)
    rig.flow.key("5", 2000.05)
    assert rig.flow.pin_dots == "●○○○"


def test_issuance_texts_all_translated_to_japanese() -> None:
    from kiosk.i18n import translate
    from kiosk.issuance import texts as tx

    ids = [v for k, v in vars(tx).items() if k.isupper() and isinstance(v, str)]
    ids += [text for n in tx.NOTICES.values() for text in (n.title, n.body, n.next_step)]
    assert [i for i in ids if translate("ja", i) == i] == []


class RefusingTerminal(SimulatedTerminal):
    """Captures, then will not give the money back (a terminal fault)."""

    def void(self, payment: Payment) -> None:
        raise PaymentUnavailable("terminal offline")

    def refund(self, payment: Payment) -> None:
        raise PaymentUnavailable("terminal offline")


def test_issuance_flow_terminal_refusing_refund_is_recorded_for_staff(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, printer=JammingPrinter(tmp_path / "spool", good_jobs=1))
    rig.orchestrator.ports.payment = RefusingTerminal()
    order_two_residence_copies(rig)
    assert rig.flow.screen.notice == "payment_not_returned"
    assert "400 yen could not be returned" in rig.flow.screen.body
    (failed,) = rig.events.of("issuance.settlement_failed")
    assert (failed["type"], failed["copies"], failed["fee_yen"], failed["action"]) == (
        "juminhyo", 2, 400, "refund"
    )  # fmt: skip
    assert "issuance.refunded" not in rig.events.types()
    assert [o.status for _, o in rig.central.outcomes] == ["failed"]
