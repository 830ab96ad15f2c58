"""The Kivy touchscreen app for facility check-in.

Layout: one module and one ``.kv`` file per screen (``kiosk/checkin/ui/screens/``),
shared widget rules in ``widgets.kv``. Screens bind to :class:`SessionView`,
a mirror of the plain-Python :class:`~kiosk.checkin.ui.session.CheckinSession` as
Kivy properties; handlers in ``.kv`` are single calls on the app.

Threads: card events arrive on the card reader's thread and are handed to
Kivy's main thread with ``Clock.schedule_once`` (thread-safe); nothing else
touches widgets or the session.

Kiosk hardening: no exit on Escape, no settings panel (F1), full screen when
configured, screen saver off.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from kivy.app import App
from kivy.clock import Clock
from kivy.core.text import DEFAULT_FONT, LabelBase
from kivy.core.window import Window
from kivy.event import EventDispatcher
from kivy.lang import Builder
from kivy.metrics import mm
from kivy.properties import BooleanProperty, NumericProperty, StringProperty
from kivy.uix.screenmanager import FadeTransition, ScreenManager

from kiosk.checkin import messages as m
from kiosk.checkin.ui.screens import SCREENS
from kiosk.checkin.ui.session import CheckinSession
from kiosk.touch import theme

HERE = Path(__file__).resolve().parent


class SessionView(EventDispatcher):  # type: ignore[misc]
    """Kivy properties mirroring the session, for the ``.kv`` bindings."""

    screen = StringProperty("attract")
    title = StringProperty("")
    body = StringProperty("")
    next_step = StringProperty("")
    success = BooleanProperty(False)
    countdown = StringProperty("")
    code_dots = StringProperty("")
    scale = NumericProperty(1.0)
    clock = StringProperty("")
    # Fixed texts in the current language.
    t_tap = StringProperty("")
    t_or_code = StringProperty("")
    t_enter_code = StringProperty("")
    t_call_staff = StringProperty("")
    t_larger = StringProperty("")
    t_language = StringProperty("")
    t_ok = StringProperty("")
    t_clear = StringProperty("")
    t_back = StringProperty("")
    t_continue = StringProperty("")
    t_still_there = StringProperty("")

    def update(self, session: CheckinSession) -> None:
        s = session.screen
        self.screen, self.title, self.body, self.next_step = s.name, s.title, s.body, s.next_step
        self.success = s.success
        self.code_dots = session.code_dots
        self.scale = theme.LARGE_TEXT_SCALE if session.large_text else 1.0
        self.countdown = (
            session.t(m.RETURNING_IN, seconds=round(session.countdown))
            if session.countdown is not None
            else ""
        )
        t = session.t
        self.t_tap, self.t_or_code = t(m.TAP_YOUR_CARD), t(m.OR_ENTER_CODE)
        self.t_enter_code, self.t_call_staff = t(m.ENTER_CODE), t(m.CALL_STAFF)
        self.t_larger = t(m.NORMAL_TEXT) if session.large_text else t(m.LARGER_TEXT)
        self.t_language, self.t_ok, self.t_clear = t(m.LANGUAGE), t(m.OK), t(m.CLEAR)
        self.t_back, self.t_continue, self.t_still_there = (
            t(m.BACK),
            t(m.CONTINUE),
            t(m.STILL_THERE),
        )


def register_fonts() -> None:
    """Noto Sans CJK as the default font (its first face is Japanese)."""
    if theme.FONT_REGULAR.exists():
        bold = theme.FONT_BOLD if theme.FONT_BOLD.exists() else theme.FONT_REGULAR
        LabelBase.register(DEFAULT_FONT, str(theme.FONT_REGULAR), fn_bold=str(bold))


class PublicApp(App):  # type: ignore[misc]
    """What every public touchscreen shares: fonts and window, screens from
    ``.kv`` files, a one-second clock for the idle timer, and kiosk
    hardening. Subclasses set ``kv_files``, ``screens``, ``view`` (Kivy
    properties) and ``session`` (the plain-Python model: ``activity(now)``,
    ``tick(now)``)."""

    use_kivy_settings = False
    kv_files: ClassVar[tuple[Path, ...]] = ()
    screens: ClassVar[Mapping[str, tuple[type, Path]]] = {}
    view: Any
    session: Any
    _on_started: Callable[[Any], None] | None = None

    def build(self) -> ScreenManager:
        register_fonts()
        Window.clearcolor = theme.rgba(theme.PAGE)
        Window.bind(on_touch_down=self._touched, on_key_down=self._key_down)
        for kv in self.kv_files:
            Builder.load_file(str(kv))
        manager = ScreenManager(transition=FadeTransition(duration=0.12))
        for name, (screen_class, kv) in self.screens.items():
            Builder.load_file(str(kv))
            manager.add_widget(screen_class(name=name))
        self.view.update(self.session)
        self.view.bind(screen=lambda _v, name: setattr(manager, "current", name))
        Clock.schedule_interval(self._tick, 1.0)
        self._tick(0)
        return manager

    def on_start(self) -> None:
        if self._on_started is not None:
            self._on_started(self)

    def open_settings(self, *_args: Any) -> bool:
        return False  # no settings panel on a public kiosk

    def _touched(self, *_args: Any) -> bool:
        self.session.activity(time.monotonic())
        return False

    def _key_down(self, _window: Any, key: int, *_args: Any) -> bool:
        # Escape (27) and F1 (282) must not close the app or open settings.
        return key in (27, 282)

    def _tick(self, _dt: float) -> None:
        self.view.clock = time.strftime("%H:%M")
        self.session.tick(time.monotonic())

    def language_name(self, code: str) -> str:
        return {"ja": "日本語", "en": "English"}.get(code, code)


class KioskApp(PublicApp):
    """The check-in touchscreen; ``session`` is built by the caller."""

    title = "City kiosk"
    kv_files = (HERE / "widgets.kv",)
    screens = SCREENS

    def __init__(
        self,
        session_factory: Callable[[Callable[[CheckinSession], None]], CheckinSession],
        facility_name: str,
        on_started: Callable[[KioskApp], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.view = SessionView()
        self.facility_name = facility_name
        self.session = session_factory(self._session_changed)
        self._on_started = on_started
        self.theme = theme
        self.mm = mm
        self.dev_panel: Any = None  # the demo's developer panel, when attached

    # --- from other threads --------------------------------------------------
    def post_card(self, ref: str | None, readable: bool = True) -> None:
        """Thread-safe: a card was identified (``ref``) or could not be used."""
        Clock.schedule_once(lambda _dt: self._card(ref, readable), 0)

    # --- main thread -------------------------------------------------------
    def _card(self, ref: str | None, readable: bool) -> None:
        now = time.monotonic()
        if ref is None:
            self.session.card_unusable(readable, now)
        else:
            self.session.card_presented(ref, now)

    def _session_changed(self, session: CheckinSession) -> None:
        self.view.update(session)

    # --- called from .kv -----------------------------------------------------
    def act(self, action: str, arg: str = "") -> None:
        now = time.monotonic()
        s = self.session
        actions: dict[str, Callable[[], None]] = {
            "language": lambda: s.open_language(now),
            "choose_language": lambda: s.choose_language(arg, now),
            "larger": lambda: s.toggle_large_text(now),
            "keypad": lambda: s.open_keypad(now),
            "key": lambda: s.key(arg, now),
            "staff": lambda: s.call_staff(now),
            "back": lambda: s.back(now),
            "continue": lambda: s.activity(now),
        }
        actions[action]()
