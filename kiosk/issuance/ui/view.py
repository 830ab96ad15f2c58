"""Kivy properties mirroring :class:`~kiosk.issuance.flow.IssuanceFlow` for
the ``.kv`` bindings: every text already translated, nothing secret (the
PIN only as dots)."""

from __future__ import annotations

from typing import Any

from kivy.properties import (
    BooleanProperty,
    ListProperty,
    NumericProperty,
    StringProperty,
)
from kivy.utils import escape_markup

from contracts.issuance import KindOut
from kiosk.issuance import texts as tx
from kiosk.issuance.flow import IssuanceFlow, IssuanceStep
from kiosk.touch import staff_texts
from kiosk.touch.mixed import beside, latin
from kiosk.touch.view import TouchView

# Stands for the kind's name while a translated sentence is escaped for markup.
_KIND = "\x00"


def kind_markup(flow: IssuanceFlow, kind: KindOut) -> str:
    japanese, translation = flow.kind_name(kind)
    return beside(japanese, translation, english=translation == kind.label_en)


# What the wait screen says for each step that waits for background work.
WAIT_TEXTS = {
    IssuanceStep.CHECKING: tx.READING_CARD,
    IssuanceStep.VERIFYING: tx.VERIFYING,
    IssuanceStep.ORDERING: tx.ORDERING,
    IssuanceStep.PAYING: tx.PAYING,
    IssuanceStep.ISSUING: tx.ISSUING,
}
FIXED = {
    "t_service": tx.SERVICE_TITLE, "t_start": tx.START, "t_place_card": tx.PLACE_CARD,
    "t_place_hint": tx.PLACE_CARD_HINT, "t_enter_pin": tx.ENTER_PIN, "t_pin_hint": tx.PIN_HINT,
    "t_last_try": tx.LAST_TRY, "t_wrong_pin": tx.WRONG_PIN, "t_choose_kind": tx.CHOOSE_KIND,
    "t_options": tx.OPTIONS, "t_options_hint": tx.OPTIONS_HINT, "t_copies": tx.COPIES,
    "t_confirm": tx.CONFIRM, "t_pay_and_print": tx.PAY_AND_PRINT, "t_printing": tx.PRINTING,
    "t_printing_hint": tx.PRINTING_HINT, "t_take_card": tx.TAKE_CARD,
    "t_take_card_hint": tx.TAKE_CARD_HINT, "t_take_certs": tx.TAKE_CERTIFICATES,
    "t_thanks": tx.THANK_YOU, "t_thanks_body": tx.THANK_YOU_BODY, "t_cancel": tx.CANCEL,
    "t_next": tx.NEXT, "t_plus": tx.PLUS, "t_minus": tx.MINUS, "t_yes": tx.ON, "t_no": tx.OFF,
    "t_call_staff": staff_texts.CALL_STAFF,
}  # fmt: skip


def _option_row(flow: IssuanceFlow, option: Any) -> tuple[str, str, list[tuple[str, str, bool]]]:
    """(id, label, [(value, text, chosen)]) of one option, label and texts as
    markup: an English fallback of central's text in the Latin font."""
    t = flow.t
    values = option.choices if option.kind == "choice" else ["true", "false"]
    fixed = {"true": t(tx.ON), "false": t(tx.OFF)}
    chosen = flow.options.get(option.id, option.default)
    label = flow.label(option)
    texts = []
    for value in values:
        if value in fixed:
            texts.append((value, latin(fixed[value], False), value == chosen))
            continue
        text = flow.choice_label(option, value)
        english = text == option.choice_labels_en.get(value)
        texts.append((value, latin(text, english), value == chosen))
    return option.id, latin(label, label == option.label_en), texts


class IssuanceView(TouchView):
    step = StringProperty(IssuanceStep.ATTRACT)
    notice = StringProperty("")
    pin_dots = StringProperty("")
    tries_text = StringProperty("")
    last_try = BooleanProperty(False)
    pin_error = BooleanProperty(False)
    wait_text = StringProperty("")
    progress = NumericProperty(0.0)
    kind_label = StringProperty("")
    copies_text = StringProperty("")
    confirm_line = StringProperty("")
    total_text = StringProperty("")
    kinds = ListProperty([])  # (id, label, fee text)
    options = ListProperty([])  # (id, label, [(value, label, selected)])

    def __init__(self, **kwargs: Any) -> None:
        for name in FIXED:
            self.apply_property(**{name: StringProperty("")})
        super().__init__(**kwargs)

    def update(self, flow: IssuanceFlow) -> None:
        t = flow.t
        s = flow.screen
        self.step = s.name
        self.notice, self.title, self.body, self.next_step = s.notice, s.title, s.body, s.next_step
        self.update_shared(flow)
        for name, message in FIXED.items():
            setattr(self, name, t(message))
        self.pin_dots = flow.pin_dots
        self.tries_text = t(tx.TRIES_LEFT, tries=flow.tries_left) if flow.tries_left else ""
        self.last_try, self.pin_error = flow.last_try, flow.pin_error
        self.wait_text = t(WAIT_TEXTS.get(s.name, tx.ORDERING), total=flow.total_yen)
        self.progress = flow.progress
        self._choices(flow)
        self.screen = s.name.screen

    def _choices(self, flow: IssuanceFlow) -> None:
        t = flow.t
        self.kinds = [
            (k.id, kind_markup(flow, k), escape_markup(t(tx.FEE_EACH, fee=k.fee_yen)))
            for k in flow.kinds
        ]
        kind = flow.kind
        self.kind_label = kind_markup(flow, kind) if kind else ""
        self.copies_text = str(flow.copies)
        fee = kind.fee_yen if kind else 0
        line = t(tx.CONFIRM_LINE, kind=_KIND, copies=flow.copies, fee=fee)
        self.confirm_line = escape_markup(line).replace(_KIND, self.kind_label)
        self.total_text = t(tx.TOTAL, total=flow.total_yen)
        self.options = [_option_row(flow, option) for option in (kind.options if kind else [])]
