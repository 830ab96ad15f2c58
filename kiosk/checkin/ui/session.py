"""The touchscreen's check-in session: what screen shows what, in plain Python.

No Kivy here: the view model is driven by method calls (a card, a key, a
tick of the clock) and tells its observer what changed, so it is tested
without a window. The Kivy app mirrors it into properties the ``.kv`` files
bind to, and calls it only from Kivy's main thread.

Privacy: the typed code lives only in this object, is shown as dots, and is
wiped on submit, on the idle timeout and whenever the session resets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo

from kiosk.checkin import messages as m
from kiosk.checkin.service import CheckinResult, CheckinService
from kiosk.i18n import DEFAULT_LANGUAGE, available_languages, translate

CODE_LENGTH = 6
# Seconds without a touch before the countdown appears, and its length.
IDLE_SECONDS = 30.0
COUNTDOWN_SECONDS = 20.0
# A result stays this long, then the next person gets the attract screen.
RESULT_SECONDS = 8.0
# A second tap on a key within this time is a touch-panel double event.
DOUBLE_TAP_SECONDS = 0.15


@dataclass
class Screen:
    """What a screen shows, already translated."""

    name: str  # attract | language | keypad | result | staff
    title: str = ""
    body: str = ""
    next_step: str = ""
    success: bool = False


@dataclass
class CheckinSession:
    service: CheckinService
    door_names: dict[str, str]
    timezone: tzinfo
    on_change: Callable[[CheckinSession], None] = lambda _s: None
    language: str = DEFAULT_LANGUAGE
    large_text: bool = False
    screen: Screen = field(default_factory=lambda: Screen("attract"))
    countdown: float | None = None  # seconds left before reset, when shown
    last_result: CheckinResult | None = None
    _code: str = ""
    _last_activity: float = 0.0
    _last_key: tuple[str, float] = ("", -1.0)

    # --- what the screens read -------------------------------------------
    def t(self, message: str, **values: object) -> str:
        return translate(self.language, message, **values)

    @property
    def code_dots(self) -> str:
        return "●" * len(self._code) + "○" * (CODE_LENGTH - len(self._code))

    @property
    def languages(self) -> list[str]:
        return available_languages()

    # --- inputs ------------------------------------------------------------
    def activity(self, now: float) -> None:
        """Any touch: restarts the idle timer and hides the countdown."""
        self._last_activity = now
        if self.countdown is not None:
            self.countdown = None
            self._changed()

    def tick(self, now: float) -> None:
        """Called about once a second from the UI clock."""
        idle = now - self._last_activity
        if self.screen.name == "attract":
            return
        if self.screen.name == "result":
            if idle >= RESULT_SECONDS:
                self.reset()
            return
        if idle >= IDLE_SECONDS + COUNTDOWN_SECONDS:
            self.reset()
        elif idle >= IDLE_SECONDS:
            self.countdown = max(0.0, IDLE_SECONDS + COUNTDOWN_SECONDS - idle)
            self._changed()

    def card_presented(self, ref: str, now: float) -> None:
        """A member card or My Number Card was identified (opaque reference)."""
        self._code = ""
        self._show_result(self.service.present_credential(ref), now)

    def card_unusable(self, readable: bool, now: float) -> None:
        self._code = ""
        self._show_result(self.service.card_not_usable(readable), now)

    def open_language(self, now: float) -> None:
        self.activity(now)
        self._go(Screen("language"))

    def choose_language(self, language: str, now: float) -> None:
        self.activity(now)
        if language in self.languages:
            self.language = language
        self._go(Screen("attract"))

    def toggle_large_text(self, now: float) -> None:
        self.activity(now)
        self.large_text = not self.large_text
        self._changed()

    def open_keypad(self, now: float) -> None:
        self.activity(now)
        self._code = ""
        self._go(Screen("keypad"))

    def key(self, key: str, now: float) -> None:
        """A keypad key: a digit, "clear" or "ok"."""
        if self._last_key[0] == key and now - self._last_key[1] < DOUBLE_TAP_SECONDS:
            return
        self._last_key = (key, now)
        self.activity(now)
        if key == "clear":
            self._code = self._code[:-1]
        elif key == "ok":
            if len(self._code) == CODE_LENGTH:
                code, self._code = self._code, ""
                self._show_result(self.service.enter_code(code), now)
                return
        elif key.isdigit() and len(key) == 1 and len(self._code) < CODE_LENGTH:
            self._code += key
        self._changed()

    def call_staff(self, now: float) -> None:
        self.activity(now)
        self._code = ""
        self.service.call_staff()
        self._go(Screen("staff", body=self.t(m.STAFF_CALLED)))

    def back(self, now: float) -> None:
        self.activity(now)
        self._code = ""
        self._go(Screen("attract"))

    def reset(self) -> None:
        """Back to the attract screen with nothing of the last person kept."""
        self._code = ""
        self.countdown = None
        self.last_result = None
        self.large_text = False
        self.language = DEFAULT_LANGUAGE
        self._go(Screen("attract"))

    # --- internals ---------------------------------------------------------
    def _show_result(self, result: CheckinResult, now: float) -> None:
        self.last_result = result
        self._last_activity = now
        self.countdown = None
        words = m.result_message(result, self.door_names, self.timezone)
        self._go(
            Screen(
                "result",
                title=self.t(words.title, **words.values),
                body=self.t(words.body, **words.values),
                next_step=self.t(words.next_step, **words.values),
                success=words.success,
            )
        )

    def _go(self, screen: Screen) -> None:
        self.screen = screen
        self._changed()

    def _changed(self) -> None:
        self.on_change(self)
