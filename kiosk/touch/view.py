"""Kivy properties both touchscreens' screens bind to (``app.view``).

:class:`TouchView` holds what every screen shows the same way: the screen's
name, its title and texts, the idle countdown, the text size, the clock and
the shared words (``t_*``), already translated, and the colours of the
person's palette (``c_*``, :mod:`kiosk.touch.theme`): every ``.kv`` colour
binds to one of these, so "High contrast" repaints every screen. Each flow's
view adds its own properties and fills them in its ``update``.
"""

from __future__ import annotations

from kivy.core.text import DEFAULT_FONT
from kivy.event import EventDispatcher
from kivy.properties import BooleanProperty, ColorProperty, NumericProperty, StringProperty

from kiosk.touch import texts as tt
from kiosk.touch import theme
from kiosk.touch.mixed import font_for
from kiosk.touch.session import TouchSession

# Property name -> message id of the words every screen may show.
SHARED_WORDS = {
    "t_language": tt.LANGUAGE,
    "t_ok": tt.OK,
    "t_clear": tt.CLEAR,
    "t_back": tt.BACK,
    "t_continue": tt.CONTINUE,
    "t_still_there": tt.STILL_THERE,
    "t_high_contrast": tt.HIGH_CONTRAST,
    "t_more_time": tt.MORE_TIME,
    "t_read_again": tt.READ_AGAIN,
    "t_call_staff": tt.CALL_STAFF,
}
# Property name (``c_*``) -> palette field.
COLOURS = {
    "c_page": "page", "c_text": "text", "c_muted": "text_muted", "c_primary": "primary",
    "c_on_primary": "on_primary", "c_success": "success", "c_danger": "danger",
    "c_notice": "notice_bg", "c_focus": "focus",
}  # fmt: skip


class TouchView(EventDispatcher):  # type: ignore[misc]
    screen = StringProperty("attract")
    title = StringProperty("")
    body = StringProperty("")
    next_step = StringProperty("")
    countdown = StringProperty("")
    # The longest countdown text: the top bar reserves room for it.
    countdown_sample = StringProperty("")
    scale = NumericProperty(1.0)
    clock = StringProperty("")
    # The person's language's font family (registered by app.register_fonts)
    # and HarfBuzz script; every shared label and button rule binds to them.
    font_name = StringProperty(DEFAULT_FONT)
    font_script = StringProperty("Latn")
    t_larger = StringProperty("")
    t_language = StringProperty("")
    t_ok = StringProperty("")
    t_clear = StringProperty("")
    t_back = StringProperty("")
    t_continue = StringProperty("")
    t_still_there = StringProperty("")
    t_high_contrast = StringProperty("")
    t_more_time = StringProperty("")
    t_read_again = StringProperty("")
    t_call_staff = StringProperty("")
    # The entry button of an attached mode (card enrolment); empty: none.
    t_mode = StringProperty("")
    # The person's choices, for the access bar's "on" marks.
    large_text = BooleanProperty(False)
    high_contrast = BooleanProperty(False)
    more_time = BooleanProperty(False)
    # Slots the app fills when it has the feature (PublicApp sets them).
    can_read_again = BooleanProperty(False)
    can_call_staff = BooleanProperty(False)
    # The window is wide (landscape): keypads go beside their explanation.
    wide = BooleanProperty(True)
    # Title and headline sizes in mm: smaller on a short panel (a 7" one),
    # so the controls stay on screen (theme.TEXT_MM, theme.COMPACT_TEXT_MM).
    title_mm = NumericProperty(theme.TEXT_MM["title"])
    huge_mm = NumericProperty(theme.TEXT_MM["huge"])
    c_page = ColorProperty(theme.rgba(theme.STANDARD.page))
    c_text = ColorProperty(theme.rgba(theme.STANDARD.text))
    c_muted = ColorProperty(theme.rgba(theme.STANDARD.text_muted))
    c_primary = ColorProperty(theme.rgba(theme.STANDARD.primary))
    c_on_primary = ColorProperty(theme.rgba(theme.STANDARD.on_primary))
    c_success = ColorProperty(theme.rgba(theme.STANDARD.success))
    c_danger = ColorProperty(theme.rgba(theme.STANDARD.danger))
    c_notice = ColorProperty(theme.rgba(theme.STANDARD.notice_bg))
    c_focus = ColorProperty(theme.rgba(theme.STANDARD.focus))

    def update_shared(self, session: TouchSession) -> None:
        """Font, text size, palette, countdown and the shared words from ``session``."""
        t = session.t
        self.font_name, self.font_script = font_for(session.language)
        self.scale = theme.LARGE_TEXT_SCALE if session.large_text else 1.0
        self.large_text, self.more_time = session.large_text, session.more_time
        self.high_contrast = session.high_contrast
        palette = theme.palette(session.high_contrast)
        for name, field in COLOURS.items():
            setattr(self, name, theme.rgba(getattr(palette, field)))
        self.countdown = (
            t(tt.RETURNING_IN, seconds=round(session.countdown))
            if session.countdown is not None
            else ""
        )
        self.countdown_sample = t(tt.RETURNING_IN, seconds=round(session.countdown_seconds))
        self.t_larger = t(tt.LARGER_TEXT)
        for name, message in SHARED_WORDS.items():
            setattr(self, name, t(message))
