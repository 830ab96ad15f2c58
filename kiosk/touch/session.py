"""What the view models of both touchscreens share, in plain Python (no Kivy).

:class:`TouchSession` is the base of the check-in session
(:class:`kiosk.checkin.session.CheckinSession`) and the issuance flow
(:class:`kiosk.issuance.flow.IssuanceFlow`): the language and text size of
the person at the screen, their accessibility choices (larger text, high
contrast, more time: all forgotten when they leave), the idle countdown,
the guard against a touch panel reporting one tap twice, and digits typed
on the keypad shown as dots. Each subclass decides what a tick, a key and a
reset mean on its own screens.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

from kiosk.i18n import DEFAULT_LANGUAGE, available_languages, translate

# Seconds without a touch before "are you still there?" appears, and how long
# it counts down before the session is wiped.
IDLE_SECONDS = 30.0
COUNTDOWN_SECONDS = 20.0
# "More time": both the idle time and the countdown are this many times longer.
MORE_TIME_FACTOR = 2.0
# A second tap on a key within this time is a touch-panel double event.
DOUBLE_TAP_SECONDS = 0.15


def dots(typed: str, length: int) -> str:
    """Typed digits as filled dots, the ones still missing as open dots."""
    return "●" * len(typed) + "○" * (length - len(typed))


def edit_digits(typed: str, key: str, length: int) -> str:
    """``typed`` after a keypad key: "clear" drops the last digit, a digit is
    added while there is room; any other key leaves it as it is."""
    if key == "clear":
        return typed[:-1]
    if key.isdigit() and len(key) == 1 and len(typed) < length:
        return typed + key
    return typed


@dataclass(kw_only=True)
class TouchSession(ABC):
    """The person at the screen; ``on_change`` is told after every change."""

    on_change: Callable[[Self], None] = lambda _s: None
    language: str = DEFAULT_LANGUAGE
    large_text: bool = False
    high_contrast: bool = False
    more_time: bool = False
    countdown: float | None = None  # seconds left before the wipe, when shown
    _last_activity: float = 0.0
    _last_key: tuple[str, float] = ("", -1.0)

    # --- what the screens read -------------------------------------------
    def t(self, message: str, **values: object) -> str:
        """``message`` in the person's language."""
        return translate(self.language, message, **values)

    @property
    def languages(self) -> list[str]:
        return available_languages()

    # --- touches and the clock ---------------------------------------------
    @abstractmethod
    def tick(self, now: float) -> None:
        """Called about once a second from the UI clock."""

    @abstractmethod
    def reset(self) -> None:
        """Back to the attract screen with nothing of the last person kept."""

    def activity(self, now: float) -> None:
        """Any touch: restarts the idle timer and hides the countdown."""
        self._last_activity = now
        if self.countdown is not None:
            self.countdown = None
            self._changed()

    def toggle_large_text(self, now: float) -> None:
        self.activity(now)
        self.large_text = not self.large_text
        self._changed()

    def toggle_high_contrast(self, now: float) -> None:
        self.activity(now)
        self.high_contrast = not self.high_contrast
        self._changed()

    def toggle_more_time(self, now: float) -> None:
        """Doubles (or restores) the idle time and the countdown; counts as a
        touch, so it also answers "are you still there?"."""
        self.activity(now)
        self.more_time = not self.more_time
        self._changed()

    @property
    def idle_seconds(self) -> float:
        """Seconds without a touch before the countdown, for this person."""
        return IDLE_SECONDS * (MORE_TIME_FACTOR if self.more_time else 1.0)

    @property
    def countdown_seconds(self) -> float:
        return COUNTDOWN_SECONDS * (MORE_TIME_FACTOR if self.more_time else 1.0)

    # --- for the subclasses ------------------------------------------------
    def _idle_seconds(self, now: float) -> float:
        return now - self._last_activity

    def _idle_expired(self, now: float) -> bool:
        """Counts down once the screen has been idle for :attr:`idle_seconds`;
        True when the countdown has run out and the session must be wiped."""
        idle, limit = self._idle_seconds(now), self.idle_seconds + self.countdown_seconds
        if idle >= limit:
            return True
        if idle >= self.idle_seconds:
            self.countdown = max(0.0, limit - idle)
            self._changed()
        return False

    def _repeated_tap(self, key: str, now: float) -> bool:
        """The same key again within ``DOUBLE_TAP_SECONDS``: the panel's echo."""
        if self._last_key[0] == key and now - self._last_key[1] < DOUBLE_TAP_SECONDS:
            return True
        self._last_key = (key, now)
        return False

    def _forget_person(self) -> None:
        """The person's language, accessibility choices and countdown back to
        the defaults: the next person starts from the standard screen."""
        self.countdown = None
        self.large_text = False
        self.high_contrast = False
        self.more_time = False
        self.language = DEFAULT_LANGUAGE

    def _changed(self) -> None:
        self.on_change(self)
