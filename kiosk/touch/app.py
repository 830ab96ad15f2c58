"""The Kivy app base of both public touchscreens (check-in and issuance).

:class:`PublicApp` loads the fonts, the shared widget rules
(``widgets.kv``, ``keypad.kv`` here) and each screen's ``.kv``, runs a
one-second clock for the idle timer, and hardens the window: no exit on
Escape, no settings panel (F1). Screens bind to ``app.view`` (Kivy
properties, a :class:`~kiosk.touch.view.TouchView`) which mirrors
``app.session`` (the plain-Python :class:`~kiosk.touch.session.TouchSession`).

A :class:`~kiosk.touch.mode.TouchMode` (card enrolment) may be attached:
its screens are added, ``act("mode")`` opens it, and while it is open it
gets every action, card and tick, so the touchscreen's own flow sees none.

Threads: events from readers and workers are handed to Kivy's main thread
with :func:`post_to_ui` (``Clock.schedule_once`` is thread-safe); nothing
else touches widgets or the session.
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
from kivy.lang import Builder
from kivy.metrics import mm
from kivy.uix.screenmanager import FadeTransition, ScreenManager

from kiosk.cards import CardSeen
from kiosk.touch import theme
from kiosk.touch import widgets as _widgets
from kiosk.touch.mode import TouchMode
from kiosk.touch.profiles import is_wide
from kiosk.touch.session import TouchSession
from kiosk.touch.view import TouchView

HERE = Path(__file__).resolve().parent
# Rules every screen may use: labels, buttons, the countdown bar, the keypad key.
SHARED_KV = (HERE / "widgets.kv", HERE / "keypad.kv")
# Escape (27) and F1 (282) must not close the app or open the settings panel.
BLOCKED_KEYS = (27, 282)
# The accessibility bar's choices (widgets.kv, AccessBar): the same on every
# screen, for whichever session is at the screen (the touchscreen's or an
# open mode's), so they are handled here rather than by each flow.
PERSON_CHOICES = {
    "larger": TouchSession.toggle_large_text,
    "contrast": TouchSession.toggle_high_contrast,
    "more_time": TouchSession.toggle_more_time,
}


def post_to_ui(call: Callable[[], None]) -> None:
    """Thread-safe: run ``call`` on Kivy's main thread."""
    Clock.schedule_once(lambda _dt: call(), 0)


def register_fonts() -> None:
    """Noto Sans CJK as the default font (its first face is Japanese)."""
    if theme.FONT_REGULAR.exists():
        bold = theme.FONT_BOLD if theme.FONT_BOLD.exists() else theme.FONT_REGULAR
        LabelBase.register(DEFAULT_FONT, str(theme.FONT_REGULAR), fn_bold=str(bold))


class PublicApp(App):  # type: ignore[misc]
    """What every public touchscreen shares. Subclasses set ``kv_files``
    (their own rules, loaded after the shared ones), ``screens`` (name ->
    screen class and its ``.kv``), ``view`` and ``session``."""

    use_kivy_settings = False
    # Filled in by subclasses that can do these (the access bar shows their
    # buttons only then): read the screen aloud again, call a member of staff.
    can_read_again: ClassVar[bool] = False
    can_call_staff: ClassVar[bool] = False
    kv_files: ClassVar[tuple[Path, ...]] = ()
    # Keyed by the flow's screen enum (a StrEnum: the names the .kv files use).
    screens: ClassVar[Mapping[Any, tuple[type, Path]]] = {}
    view: TouchView
    session: TouchSession

    def __init__(
        self,
        facility_name: str,
        on_started: Callable[[Any], None] | None = None,
        mode: TouchMode | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.facility_name = facility_name
        self._on_started = on_started
        self.mode = mode
        self.mode_active = False
        # The .kv rules read these through ``app``.
        self.theme = theme
        self.mm = mm

    def build(self) -> ScreenManager:
        register_fonts()
        self.view.can_read_again, self.view.can_call_staff = (
            self.can_read_again,
            self.can_call_staff,
        )
        self.view.bind(c_page=lambda _v, rgba: setattr(Window, "clearcolor", rgba))
        Window.clearcolor = self.view.c_page
        Window.bind(on_touch_down=self._touched, on_key_down=self._key_down)
        Window.bind(size=self._window_resized)
        self._window_resized(Window, Window.size)
        mode_kv = self.mode.kv_files if self.mode else ()
        for kv in (*SHARED_KV, *self.kv_files, *mode_kv):
            Builder.load_file(str(kv))
        manager = ScreenManager(transition=FadeTransition(duration=0.12))
        mode_screens = self.mode.screens if self.mode else {}
        for name, (screen_class, kv) in (*self.screens.items(), *mode_screens.items()):
            Builder.load_file(str(kv))
            manager.add_widget(screen_class(name=name))
        if self.mode is not None:
            self.mode.bind(on_change=self._mode_changed, on_exit=self._mode_left)
        self._session_changed(self.session)
        self.view.bind(screen=lambda _v, name: setattr(manager, "current", name))
        Clock.schedule_interval(self._tick, 1.0)
        self._tick(0)
        return manager

    def on_start(self) -> None:
        if self._on_started is not None:
            self._on_started(self)

    def on_stop(self) -> None:
        if self.mode is not None:
            self.mode.close()

    # --- called from .kv -----------------------------------------------------
    def act(self, action: str, arg: str = "", value: str = "") -> None:
        """Every ``.kv`` handler: the person's choices (access bar), then to
        the open mode, or to this touchscreen."""
        now = time.monotonic()
        if action in PERSON_CHOICES:
            PERSON_CHOICES[action](self.active_session, now)
        elif action == "read_again":
            self.active_session.activity(now)
            self.read_again(now)
        elif action == "call_staff":
            self.active_session.activity(now)
            self.call_staff(now)
        elif self.mode_active and self.mode is not None:
            self.mode.act(action, arg, now)
        elif action == "mode" and self.mode is not None:
            self.mode_active = True
            # The person's choices go with them into the mode.
            self.mode.session.high_contrast = self.session.high_contrast
            self.mode.session.more_time = self.session.more_time
            self.mode.open(self.session.language, self.session.large_text, now)
        else:
            self.host_act(action, arg, value, now)

    def fit_font(self, text: str, size: float, width: float) -> float:
        """For ``.kv``: ``size`` shrunk so the longest word fits ``width``."""
        return _widgets.fit_font(text, size, width)

    def read_again(self, now: float) -> None:
        """ "Read again": say the current screen again (voice guidance fills
        this in; set ``can_read_again`` to show the button). Nothing by default."""

    def call_staff(self, now: float) -> None:
        """ "Call staff" from the access bar (set ``can_call_staff`` to show
        the button). Nothing by default: a touchscreen that can call staff
        overrides it."""

    def host_act(self, action: str, arg: str, value: str, now: float) -> None:
        """This touchscreen's own actions."""
        raise NotImplementedError(f"{type(self).__name__} has no action {action!r}")

    # --- cards -----------------------------------------------------------------
    def post_seen(self, seen: CardSeen) -> None:
        """Thread-safe: a card was identified (:class:`kiosk.cards.CardFeed`'s sink)."""
        post_to_ui(lambda: self._seen(seen))

    def _seen(self, seen: CardSeen) -> None:
        now = time.monotonic()
        if self.mode_active and self.mode is not None:
            self.mode.card(seen, now)
        else:
            self.host_card(seen, now)

    def host_card(self, seen: CardSeen, now: float) -> None:
        """An identified card for this touchscreen's own flow (none by default)."""

    def open_settings(self, *_args: Any) -> bool:
        return False  # no settings panel on a public kiosk

    def language_name(self, code: str) -> str:
        """A language's name in that language, for the language screen."""
        return {"ja": "日本語", "en": "English"}.get(code, code)

    def _session_changed(self, session: Any) -> None:
        if self.mode_active:
            return  # the mode owns the screen until the person leaves it
        self.view.update(session)
        self.view.t_mode = session.t(self.mode.entry_label) if self.mode else ""

    def _mode_changed(self) -> None:
        if self.mode_active and self.mode is not None:
            self.mode.show(self.view)

    def _mode_left(self) -> None:
        """The person left the mode: nothing of them stays on this touchscreen."""
        self.mode_active = False
        self.session.reset()
        self._session_changed(self.session)

    @property
    def active_session(self) -> TouchSession:
        return self.mode.session if self.mode_active and self.mode else self.session

    def _touched(self, *_args: Any) -> bool:
        # After the touch has reached the widgets: a touch hides the idle
        # banner, and hiding it first would hand this very touch to the
        # access bar button under the banner's Continue.
        now = time.monotonic()
        Clock.schedule_once(lambda _dt: self.active_session.activity(now), 0)
        return False

    def _window_resized(self, _window: Any, size: tuple[int, int]) -> None:
        self.view.wide = is_wide(*size)
        short = size[1] / mm(1) < theme.COMPACT_HEIGHT_MM
        sizes = theme.COMPACT_TEXT_MM if short else theme.TEXT_MM
        self.view.title_mm, self.view.huge_mm = sizes["title"], sizes["huge"]

    def _key_down(self, _window: Any, key: int, *_args: Any) -> bool:
        return key in BLOCKED_KEYS

    def _tick(self, _dt: float) -> None:
        self.view.clock = time.strftime("%H:%M")
        self.active_session.tick(time.monotonic())
