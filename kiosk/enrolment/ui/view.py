"""Kivy properties of the enrolment screens' own words and values
(``app.mode.view``); what every screen shares (text size, countdown,
OK/Clear, title, body) is on the touchscreen's ``app.view``."""

from __future__ import annotations

from kivy.event import EventDispatcher
from kivy.properties import BooleanProperty, StringProperty

from kiosk.enrolment import texts as tx
from kiosk.enrolment.session import EnrolmentSession


class EnrolmentView(EventDispatcher):  # type: ignore[misc]
    code_text = StringProperty("")
    card_notice = StringProperty("")
    success = BooleanProperty(False)
    can_retry = BooleanProperty(False)
    t_enter_code = StringProperty("")
    t_code_hint = StringProperty("")
    t_tap_card = StringProperty("")
    t_tap_hint = StringProperty("")
    t_cancel = StringProperty("")
    t_enter_again = StringProperty("")

    def update(self, session: EnrolmentSession) -> None:
        t = session.t
        self.code_text = session.code_text
        self.card_notice = session.card_notice
        self.success = session.screen.success
        self.can_retry = session.can_retry
        self.t_enter_code, self.t_code_hint = t(tx.ENTER_CODE), t(tx.CODE_HINT)
        self.t_tap_card, self.t_tap_hint = t(tx.TAP_CARD), t(tx.TAP_HINT)
        self.t_cancel, self.t_enter_again = t(tx.CANCEL), t(tx.ENTER_AGAIN)
