"""Kivy properties both touchscreens' screens bind to (``app.view``).

:class:`TouchView` holds what every screen shows the same way: the screen's
name, its title and texts, the idle countdown, the text size, the clock and
the shared words (``t_*``), already translated. Each flow's view adds its
own properties and fills them in its ``update``.
"""

from __future__ import annotations

from kivy.core.text import DEFAULT_FONT
from kivy.event import EventDispatcher
from kivy.properties import NumericProperty, StringProperty

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
}


class TouchView(EventDispatcher):  # type: ignore[misc]
    screen = StringProperty("attract")
    title = StringProperty("")
    body = StringProperty("")
    next_step = StringProperty("")
    countdown = StringProperty("")
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
    # The entry button of an attached mode (card enrolment); empty: none.
    t_mode = StringProperty("")

    def update_shared(self, session: TouchSession) -> None:
        """Font, text size, countdown and the shared words from ``session``."""
        t = session.t
        self.font_name, self.font_script = font_for(session.language)
        self.scale = theme.LARGE_TEXT_SCALE if session.large_text else 1.0
        self.countdown = (
            t(tt.RETURNING_IN, seconds=round(session.countdown))
            if session.countdown is not None
            else ""
        )
        self.t_larger = t(tt.NORMAL_TEXT) if session.large_text else t(tt.LARGER_TEXT)
        for name, message in SHARED_WORDS.items():
            setattr(self, name, t(message))
