"""The Kivy app base of both public touchscreens (check-in and issuance).

:class:`PublicApp` loads the fonts, the shared widget rules
(``widgets.kv``, ``keypad.kv`` here) and each screen's ``.kv``, runs a
one-second clock for the idle timer, and hardens the window: no exit on
Escape, no settings panel (F1). Other keys go to the USB keypad's focus
(:mod:`kiosk.touch.keyfocus`, ``[keypad]``), which speaks through
``app.speech``. Screens bind to ``app.view`` (Kivy
properties, a :class:`~kiosk.touch.view.TouchView`) which mirrors
``app.session`` (the plain-Python :class:`~kiosk.touch.session.TouchSession`).

A :class:`~kiosk.touch.mode.TouchMode` (card enrolment) may be attached:
its screens are added, ``act("mode")`` opens it, and while it is open it
gets every action, card and tick, so the touchscreen's own flow sees none.

A :class:`~kiosk.voice.guide.VoiceGuide` may be attached (``voice``): after
every change of the view it is told the screen, its table
(``voice_screens``, or the open mode's) and the language, and speaks what
is new; ``act("read_again")`` repeats the screen's prompt.

Remote screenshots (``screen.capture``, :mod:`kiosk.touch.capture`): with
``commands`` attached, the one-second clock lets it claim the touchscreen's
commands; it asks the app what is on screen and for a PNG of the window.

Threads: events from readers and workers are handed to Kivy's main thread
with :func:`post_to_ui` (``Clock.schedule_once`` is thread-safe); nothing
else touches widgets or the session.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from kivy.app import App
from kivy.clock import Clock
from kivy.core.text import DEFAULT_FONT, LabelBase
from kivy.core.window import Window
from kivy.lang import Builder
from kivy.metrics import mm
from kivy.uix.screenmanager import FadeTransition, ScreenManager

from foundation import languages
from kiosk.cards import CardSeen
from kiosk.touch import theme
from kiosk.touch import widgets as _widgets
from kiosk.touch.capture import ScreenCommands
from kiosk.touch.keyfocus import KeyFocus
from kiosk.touch.keynav import NullSpeech, Speech
from kiosk.touch.mode import TouchMode
from kiosk.touch.profiles import is_wide
from kiosk.touch.session import TouchSession
from kiosk.touch.view import TouchView
from sync.config import KeypadSection

if TYPE_CHECKING:
    from kiosk.voice.guide import VoiceGuide
    from kiosk.voice.prompts import ScreenSpeech

log = logging.getLogger(__name__)
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
    """Noto Sans CJK as the default font (its first face is Japanese), and
    each font family of :mod:`foundation.languages` under its name (what
    ``app.view.font_name`` holds). A family whose files are missing gets the
    default font, with one warning: that language may show empty boxes."""
    if theme.FONT_REGULAR.exists():
        bold = theme.FONT_BOLD if theme.FONT_BOLD.exists() else theme.FONT_REGULAR
        LabelBase.register(DEFAULT_FONT, str(theme.FONT_REGULAR), fn_bold=str(bold))
    for family, (regular, bold) in languages.FONT_FILES.items():
        if regular.exists():
            heavy = bold if bold.exists() else regular
            LabelBase.register(family, str(regular), fn_bold=str(heavy))
            continue
        log.warning("font missing, using the default font", extra={"font": str(regular)})
        default = LabelBase._fonts[DEFAULT_FONT]  # (regular, italic, bold, bolditalic)
        LabelBase.register(family, default[0], fn_bold=default[2])


class _VoiceSpeech:
    """The keypad's :class:`~kiosk.touch.keynav.Speech` through the app's voice guide."""

    def __init__(self, app: PublicApp) -> None:
        self._app = app

    def say(self, text: str) -> None:
        self._app.say(text)

    def repeat(self) -> None:
        self._app.read_again()


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
    # What each screen says aloud (kiosk.voice.prompts), keyed by screen name.
    voice_screens: ClassVar[Mapping[str, ScreenSpeech]] = {}
    view: TouchView
    session: TouchSession

    def __init__(
        self,
        facility_name: str,
        on_started: Callable[[Any], None] | None = None,
        mode: TouchMode | None = None,
        voice: VoiceGuide | None = None,
        keypad: KeypadSection | None = None,
        *,
        commands: ScreenCommands | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.facility_name = facility_name
        self.commands = commands
        self._on_started = on_started
        self.mode = mode
        self.voice = voice
        self.mode_active = False
        # The USB keypad (kiosk/touch/keynav.py) and what it says; voice
        # guidance replaces ``speech``.
        self.keypad = keypad or KeypadSection()
        self.keyfocus: KeyFocus | None = None
        self.speech: Speech = _VoiceSpeech(self) if voice is not None else NullSpeech()
        # The .kv rules read these through ``app``.
        self.theme = theme
        self.mm = mm

    def build(self) -> ScreenManager:
        register_fonts()
        if self.voice is not None:
            self.voice.post = post_to_ui  # its worker threads hand prompts back here
            names = [(code, self.language_name(code)) for code in self.session.languages]
            self.voice.prepare(lambda: names, after=5.0)  # the language screen's names
        # Read again needs a voice guide; the access bar shows it only then.
        self.view.can_read_again = self.can_read_again or self.voice is not None
        self.view.can_call_staff = self.can_call_staff
        self.view.bind(c_page=lambda _v, rgba: setattr(Window, "clearcolor", rgba))
        Window.clearcolor = self.view.c_page
        Window.bind(on_touch_down=self._touched, on_key_down=self._key_down, on_key_up=self._key_up)
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
        if self.keypad.enabled:
            self.keyfocus = KeyFocus(self, self.keypad)
            self.keyfocus.attach(manager)
        Clock.schedule_interval(self._tick, 1.0)
        self._tick(0)
        return manager

    def on_start(self) -> None:
        if self._on_started is not None:
            self._on_started(self)

    def on_stop(self) -> None:
        if self.commands is not None:
            self.commands.close()
        if self.mode is not None:
            self.mode.close()
        if self.voice is not None:
            self.voice.close()

    # --- called from .kv -----------------------------------------------------
    def act(self, action: str, arg: str = "", value: str = "") -> None:
        """Every ``.kv`` handler: the person's choices (access bar), then to
        the open mode, or to this touchscreen."""
        now = time.monotonic()
        if action in PERSON_CHOICES:
            PERSON_CHOICES[action](self.active_session, now)
        elif action == "read_again":
            self.active_session.activity(now)
            self.read_again()
        elif action == "call_staff":
            # The access bar's button and the USB keypad's call-staff key.
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

    def fit_font(
        self, text: str, size: float, width: float, font_name: str = "", height: float = 0.0
    ) -> float:
        """For ``.kv``: ``size`` shrunk so the longest word fits ``width``
        (measured in ``font_name``, the person's font: ``app.view.font_name``)
        and, with ``height``, the wrapped text that height."""
        return _widgets.fit_font(text, size, width, font_name, height)

    def call_staff(self, now: float) -> None:
        """ "Call staff" from the access bar or the keypad (set
        ``can_call_staff`` to show the button). Nothing by default: a
        touchscreen that can call staff overrides it."""

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
        entry = languages.BY_CODE.get(code)
        return entry.name if entry else code

    def _session_changed(self, session: Any) -> None:
        if self.mode_active:
            return  # the mode owns the screen until the person leaves it
        self.view.update(session)
        self.view.t_mode = session.t(self.mode.entry_label) if self.mode else ""
        self._voice_show()

    def _mode_changed(self) -> None:
        if self.mode_active and self.mode is not None:
            self.mode.show(self.view)
            self._voice_show()

    # --- voice guidance ------------------------------------------------------
    def read_again(self) -> None:
        """Say the current screen's prompt again (the access bar's "Read
        again", the keypad's repeat key); nothing without a voice guide."""
        if self.voice is not None:
            self.voice.read_again()

    def say(self, text: str) -> None:
        """Speak ``text`` in the person's language (e.g. the focused control)."""
        if self.voice is not None:
            self.voice.say(text, self.active_session.language)

    def _voice_show(self) -> None:
        if self.voice is None:
            return
        in_mode = self.mode_active and self.mode is not None
        table = self.mode.voice_screens if in_mode and self.mode else self.voice_screens
        views = (self.mode.view, self.view) if in_mode and self.mode else (self.view,)

        def read(name: str) -> Any:
            for view in views:
                if hasattr(view, name):
                    return getattr(view, name)
            return None

        session = self.active_session
        # The language screen's buttons: each language's name in its own voice.
        names = (
            [(code, self.language_name(code)) for code in session.languages]
            if self.view.screen == "language"
            else []
        )
        self.voice.show(table, self.view.screen, session.language, read, names)

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
        if key in BLOCKED_KEYS:
            return True
        return self.keyfocus is not None and self.keyfocus.key_down(key)

    def _key_up(self, _window: Any, key: int, *_args: Any) -> bool:
        return self.keyfocus is not None and self.keyfocus.key_up(key)

    def _tick(self, _dt: float) -> None:
        self.view.clock = time.strftime("%H:%M")
        self.active_session.tick(time.monotonic())
        if self.commands is not None:
            self.commands.tick(self.screen_state, self.capture_png, post_to_ui)

    # --- remote screenshots (kiosk.touch.capture) ------------------------------
    def screen_state(self) -> tuple[str, bool, bool]:
        """What is on screen: its name, whether a mode is open, whether the
        idle countdown shows (``kiosk.touch.capture.busy_screen`` decides)."""
        countdown = self.active_session.countdown is not None
        return self.view.screen, self.mode_active, countdown

    def capture_png(self, done: Callable[[bytes], None]) -> None:
        """A PNG of the window as drawn at the next frame, to ``done``."""

        def flipped(*_args: Any) -> None:
            Window.unbind(on_flip=flipped)
            with tempfile.TemporaryDirectory(prefix="kiosk-shot-") as folder:
                path = Window.screenshot(str(Path(folder) / "screen.png"))
                png = Path(path).read_bytes()
            done(png)

        Window.bind(on_flip=flipped)
        Window.canvas.ask_update()
