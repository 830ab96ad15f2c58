"""Kivy properties mirroring :class:`~kiosk.checkin.session.CheckinSession`
for the check-in ``.kv`` bindings: every text already translated, the typed
code only as dots."""

from __future__ import annotations

from kivy.properties import BooleanProperty, StringProperty

from kiosk.checkin import messages as m
from kiosk.checkin.session import CheckinSession
from kiosk.touch.mixed import mixed_markup
from kiosk.touch.view import TouchView


class CheckinView(TouchView):
    success = BooleanProperty(False)
    code_dots = StringProperty("")
    # Check-in's own words in the current language.
    t_tap = StringProperty("")
    t_or_code = StringProperty("")
    t_enter_code = StringProperty("")
    # Empty unless the door is in lockdown (the attract screen shows it then).
    t_closed = StringProperty("")
    # Empty unless the store's disk is full (the attract screen shows it).
    t_notice = StringProperty("")

    def update(self, session: CheckinSession) -> None:
        s = session.screen
        self.update_shared(session)
        # Room names come from the configuration, usually in Japanese: as
        # markup, in the Japanese font inside another language's sentence.
        body, next_step = (mixed_markup(text, self.font_name) for text in (s.body, s.next_step))
        self.screen, self.title, self.body, self.next_step = s.name, s.title, body, next_step
        self.success = s.success
        self.code_dots = session.code_dots
        t = session.t
        self.t_tap, self.t_or_code = t(m.TAP_YOUR_CARD), t(m.OR_ENTER_CODE)
        self.t_enter_code = t(m.ENTER_CODE)
        self.t_closed = t(m.ENTRANCE_CLOSED) if session.entrance_closed else ""
        self.t_notice = t(m.STORE_FULL_NOTICE) if session.store_full else ""
