"""Properties of the issuance flow over any sequence of inputs and outcomes:
no PIN survives a reset, and nobody ends charged without a printed
certificate (every capture is printed, voided or refunded)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.errors import CentralRefused, CentralUnreachable
from kiosk.issuance.flow import IssuanceStep
from kiosk.issuance.printing import PrinterState
from tests.unit.issuance_fakes import FakeCard, JammingPrinter, Rig, make_rig

ACTIONS = st.sampled_from(
    ["start", "lang", "place", "remove", "digit", "clear", "ok", "kind", "option", "plus",
     "next", "back", "cancel", "tick", "idle", "run", "jam", "paper", "decline", "down",
     "refuse_confirm", "wrong_pin", "walk", "walk", "walk"]
)  # fmt: skip


def act(rig: Rig, action: str) -> None:
    flow, now = rig.flow, rig.at()
    simple: dict[str, Callable[[], object]] = {
        "start": lambda: flow.start(now),
        "lang": lambda: flow.choose_language("en", now),
        "digit": lambda: flow.key("7", now),
        "clear": lambda: flow.key("clear", now),
        "ok": lambda: flow.key("ok", now),
        "kind": lambda: flow.choose_kind("juminhyo", now),
        "option": lambda: flow.set_option("household", "all", now),
        "plus": lambda: flow.change_copies(1, now),
        "next": lambda: flow.next(now),
        "back": lambda: flow.back(now),
        "cancel": lambda: flow.cancel(now),
        "tick": lambda: flow.tick(now),
        "idle": lambda: flow.tick(rig.at(60)),
        "run": rig.run_deferred,
        "jam": lambda: rig.printer.set_state(PrinterState.JAMMED),
        "paper": lambda: rig.printer.set_state(PrinterState.OK),
        "decline": lambda: rig.payment.script.append("declined"),
        "down": lambda: rig.central.fail_next("confirm", CentralUnreachable("down")),
        "refuse_confirm": lambda: rig.central.fail_next("confirm", CentralRefused("order_state")),
        "wrong_pin": lambda: setattr(rig.card, "pin", "1111"),
    }
    if action == "walk":  # the happy path as far as the flow lets it go
        rig.card.present = True
        for step in ["start", "lang", "place", "run", *["digit"] * 4, "ok", "run", "kind",
                     "next", "next", "next", "run"]:  # fmt: skip
            act(rig, step)
    elif action == "place":
        rig.card.present = True
        flow.card_placed(now)
    elif action == "remove":
        rig.card.present = False
        flow.card_removed(now)
    else:
        simple[action]()


@settings(max_examples=150, deadline=None)
@given(st.lists(ACTIONS, max_size=60), st.booleans(), st.integers(0, 2))
def test_issuance_flow_never_keeps_a_pin_or_money_without_a_certificate(
    actions: list[str], deferred: bool, good_jobs: int
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        spool = Path(folder) / "spool"
        rig = make_rig(Path(folder), deferred=deferred, card=FakeCard(pin="7777"),
                       printer=JammingPrinter(spool, good_jobs=good_jobs))  # fmt: skip
        for action in actions:
            act(rig, action)
            if rig.step() == IssuanceStep.ATTRACT:
                assert not rig.flow.has_pin and rig.flow.kind is None
        rig.run_deferred()
        rig.flow.reset()
        rig.run_deferred()
        assert not rig.flow.has_pin and rig.flow.options == {} and rig.flow.session is None
        issued = sum(d["fee_yen"] for d in rig.events.of("issuance.issued"))
        assert rig.payment.balance() == issued  # kept money == certificates printed
        assert rig.central.sessions == {}  # every session closed at central
