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
from enum import StrEnum

from kiosk.checkin import messages as m
from kiosk.checkin.service import CheckinResult, CheckinService
from kiosk.touch.session import IDLE_SECONDS, TouchSession, dots, edit_digits
from kiosk.touch.staff_texts import staff_lines
from kiosk.touch.staffcall import CallPhase, CallStatus, StaffCaller
from sync.config import StaffCallSection

CODE_LENGTH = 6
# A result stays this long, then the next person gets the attract screen.
RESULT_SECONDS = 8.0


class CheckinScreen(StrEnum):
    """The check-in touchscreen's screens (one module and ``.kv`` each)."""

    ATTRACT = "attract"
    LANGUAGE = "language"
    KEYPAD = "keypad"
    RESULT = "result"
    STAFF = "staff"


@dataclass
class Screen:
    """What a screen shows, already translated."""

    name: CheckinScreen
    title: str = ""
    body: str = ""
    next_step: str = ""
    success: bool = False


@dataclass
class CheckinSession(TouchSession):
    service: CheckinService
    door_names: dict[str, str]
    timezone: tzinfo
    screen: Screen = field(default_factory=lambda: Screen(CheckinScreen.ATTRACT))
    last_result: CheckinResult | None = None
    # Calls staff through central; None: there is no way to reach staff from
    # this screen, and the staff screen says where to go instead.
    staff: StaffCaller | None = None
    # The door is in lockdown (read each second on the attract screen): the
    # attract screen says the entrance is closed before anyone taps.
    entrance_closed: bool = False
    # Is the device store's disk full (events refused)? Looked at every tick;
    # the attract screen then says so (messages.STORE_FULL_NOTICE).
    storage_full: Callable[[], bool] = lambda: False
    store_full: bool = False
    _code: str = ""

    # --- what the screens read -------------------------------------------
    @property
    def code_dots(self) -> str:
        return dots(self._code, CODE_LENGTH)

    # --- inputs ------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Called about once a second from the UI clock."""
        full = self.storage_full()
        if full != self.store_full:
            self.store_full = full
            self._changed()
        if self.screen.name == CheckinScreen.ATTRACT:
            closed = self.service.entrance_closed()
            if closed != self.entrance_closed:
                self.entrance_closed = closed
                self._changed()
            return
        if self.screen.name == CheckinScreen.RESULT:
            if self._idle_seconds(now) >= RESULT_SECONDS:
                self.reset()
            return
        if self.screen.name == CheckinScreen.STAFF and self.staff is not None:
            status = self.staff.poll(now)
            if status is not None and status.phase is CallPhase.FINISHED:
                self.reset()  # staff are with the person: the screen is free again
                return
            if status is not None:
                self._show_staff(status)
            if status is not None and status.phase is not CallPhase.UNREACHABLE:
                # Waiting for staff is not being idle: ask later than elsewhere.
                now -= max(0.0, self.staff.settings.wait_seconds - IDLE_SECONDS)
        if self._idle_expired(now):
            self.reset()

    def card_presented(self, ref: str, now: float) -> None:
        """A member card or My Number Card was identified (opaque reference)."""
        self._code = ""
        self._show_result(self.service.present_credential(ref), now)

    def card_unusable(self, readable: bool, now: float) -> None:
        self._code = ""
        self._show_result(self.service.card_not_usable(readable), now)

    def open_language(self, now: float) -> None:
        self.activity(now)
        self._go(Screen(CheckinScreen.LANGUAGE))

    def choose_language(self, language: str, now: float) -> None:
        self.activity(now)
        if language in self.languages:
            self.language = language
        self._go(Screen(CheckinScreen.ATTRACT))

    def open_keypad(self, now: float) -> None:
        self.activity(now)
        self._code = ""
        self._go(Screen(CheckinScreen.KEYPAD))

    def key(self, key: str, now: float) -> None:
        """A keypad key: a digit, "clear" or "ok"."""
        if self._repeated_tap(key, now):
            return
        self.activity(now)
        if key == "ok" and len(self._code) == CODE_LENGTH:
            code, self._code = self._code, ""
            self._show_result(self.service.enter_code(code), now)
            return
        self._code = edit_digits(self._code, key, CODE_LENGTH)
        self._changed()

    def call_staff(self, now: float) -> None:
        self.activity(now)
        self._code = ""
        if self.staff is None:
            self._show_staff(CallStatus("", CallPhase.UNREACHABLE, now))
            return
        self._show_staff(self.staff.call(now))

    def back(self, now: float) -> None:
        self.activity(now)
        self._code = ""
        if self.staff is not None and self.screen.name == CheckinScreen.STAFF:
            self.staff.end("back")
        self._go(Screen(CheckinScreen.ATTRACT))

    def reset(self) -> None:
        """Back to the attract screen with nothing of the last person kept."""
        if self.staff is not None:
            self.staff.end("left")
        self._code = ""
        self.last_result = None
        self._forget_person()
        self._go(Screen(CheckinScreen.ATTRACT))

    # --- internals ---------------------------------------------------------
    def _show_result(self, result: CheckinResult, now: float) -> None:
        self.last_result = result
        self._last_activity = now
        self.countdown = None
        words = m.result_message(result, self.door_names, self.timezone)
        self._go(
            Screen(
                CheckinScreen.RESULT,
                title=self.t(words.title, **words.values),
                body=self.t(words.body, **words.values),
                next_step=self.t(words.next_step, **words.values),
                success=words.success,
            )
        )

    def _show_staff(self, status: CallStatus) -> None:
        settings = self.staff.settings if self.staff is not None else StaffCallSection()
        title, body, next_step = staff_lines(status, settings, self.t)
        screen = Screen(CheckinScreen.STAFF, title=title, body=body, next_step=next_step)
        if screen != self.screen:
            self._go(screen)

    def _go(self, screen: Screen) -> None:
        self.screen = screen
        self._changed()
