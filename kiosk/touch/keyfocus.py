"""The keypad on a running touchscreen: Kivy side of :mod:`kiosk.touch.keynav`.

:class:`KeyFocus` gets the window's key events from
:class:`~kiosk.touch.app.PublicApp`, collects the buttons of the current
screen in reading order (the widget tree's order: visible, enabled
buttons), asks :func:`~kiosk.touch.keynav.navigate` what the key does and
carries it out: the focus ring (the ``focused`` property of the shared
button rules in ``widgets.kv``), a button's release dispatched as a tap
would, ``app.act`` for typed digits, and the words for ``app.speech``.

The focus is shown and spoken only once someone has used the keypad in
this session (from the attract screen on); touch users see no ring.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kivy.clock import Clock
from kivy.factory import Factory
from kivy.uix.button import Button
from kivy.uix.label import Label
from kivy.uix.widget import Widget

from kiosk.touch.keynav import (
    Item,
    Key,
    Step,
    changed_words,
    first_focus,
    key_map,
    navigate,
    typed_count,
    typed_message,
)
from kiosk.touch.keynav import announce as announce_focus
from kiosk.touch.keypad_presence import KeypadPresence
from kiosk.touch.mixed import plain
from sync.config import KeypadSection

if TYPE_CHECKING:
    from kiosk.touch.app import PublicApp

log = logging.getLogger("kiosk.keypad")

# Buttons that leave the step: the keypad's "back" presses the first shown.
BACK_IDS = ("back_button", "cancel_button", "done_button")
# Labels that show the typed PIN or code (as dots, or the enrolment code).
TYPED_IDS = ("pin_dots", "code_dots", "code_text")
# The screen a session starts and ends on: the keypad user is forgotten there.
ATTRACT = "attract"


class ScreenButtons:
    """The current screen's buttons, in reading order, as the navigator sees them."""

    def __init__(self, screen: Widget) -> None:
        names = widget_ids(screen)
        self.widgets: list[Button] = []
        self.items: list[Item] = []
        self.words: list[str] = []  # the labels' texts, in reading order
        self.digit_entry = False
        primary = getattr(Factory, "PrimaryButton", None)
        for widget in screen.walk(restrict=True):
            if not isinstance(widget, Label) or not _shown(widget, screen):
                continue
            # What it shows, without the tags of a markup label (kiosk.touch.mixed).
            text = plain(str(widget.text)) if widget.markup else str(widget.text)
            if not isinstance(widget, Button):
                self.words.append(text)
                continue
            if str(getattr(widget, "key", "")).isdigit():
                self.digit_entry = True
            self.widgets.append(widget)
            self.items.append(
                Item(
                    label=text,
                    enabled=not widget.disabled,
                    primary=primary is not None and isinstance(widget, primary),
                    back=names.get(widget.uid) in BACK_IDS,
                )
            )
        self.typed = next(
            (str(screen.ids[name].text) for name in TYPED_IDS if name in screen.ids), ""
        )

    def index(self, widget: Button | None) -> int | None:
        for i, candidate in enumerate(self.widgets):
            if candidate is widget:
                return i
        return None


def widget_ids(screen: Widget) -> dict[int, str]:
    """Widget uid -> its id in the kv rule that made it (``back_button``)."""
    names: dict[int, str] = {}
    for widget in screen.walk(restrict=True):
        for name, target in widget.ids.items():
            try:
                names[target.uid] = name
            except ReferenceError:  # an id of a widget already gone
                continue
    return names


def _shown(widget: Widget, screen: Widget) -> bool:
    """On screen and usable by touch: no ancestor hidden, sized."""
    if widget.width <= 0 or widget.height <= 0:
        return False
    node: Widget | None = widget
    while node is not None and node is not screen:
        if node.opacity <= 0:
            return False
        node = node.parent
    return node is screen


class KeyFocus:
    """The keypad of one app (``PublicApp.keyfocus``)."""

    def __init__(self, app: PublicApp, settings: KeypadSection) -> None:
        self.app = app
        self.keys: dict[int, Key] = key_map(settings.call_staff_key)
        self.focused: Button | None = None
        self.screen_name = ""
        self.engaged = False  # someone used the keypad since the attract screen
        self._held: set[int] = set()
        self.presence: KeypadPresence | None = None
        if settings.device:
            self.presence = KeypadPresence(Path(settings.device))
            self.presence.check()
            Clock.schedule_interval(lambda _dt: self._check_presence(), settings.check_seconds)

    def attach(self, manager: Any) -> None:
        manager.bind(current=lambda *_a: Clock.schedule_once(lambda _dt: self._entered(), 0))

    # --- from the window ------------------------------------------------------
    def key_down(self, code: int) -> bool:
        """True when the key is the keypad's (and so used up)."""
        key = self.keys.get(code)
        if key is None:
            return False
        if code in self._held:  # the keyboard's auto-repeat: one press, one action
            return True
        self._held.add(code)
        self.app.active_session.activity(time.monotonic())
        if self.app.root.current != self.screen_name:
            self._entered(announce=False)
        buttons = self._buttons()
        # The first key of a session chooses nothing yet: it says where the
        # focus is (the ring was hidden until now).
        focus = buttons.index(self.focused) if self.engaged else None
        self.engaged = True
        step = navigate(key, buttons.items, focus, buttons.digit_entry, self.t)
        self._carry_out(step, buttons)
        return True

    def key_up(self, code: int) -> bool:
        self._held.discard(code)
        return code in self.keys

    # --- internals --------------------------------------------------------------
    def t(self, message: str, **values: object) -> str:
        return self.app.active_session.t(message, **values)

    def _buttons(self) -> ScreenButtons:
        return ScreenButtons(self.app.root.current_screen)

    def _entered(self, announce: bool = True) -> None:
        """A new screen: the focus starts on its main action."""
        self.screen_name = self.app.root.current
        if self.screen_name == ATTRACT and self.app.view.screen == ATTRACT:
            self.engaged = False  # the next person starts without the ring
            # A key-up lost on the way (not one still held: its auto-repeat
            # must not act on the next screen) blocks that key until here.
            self._held.clear()
        buttons = self._buttons()
        start = None if buttons.digit_entry else first_focus(buttons.items)
        self._focus(buttons, start)
        if announce and self.engaged and start is not None:
            self._say(announce_focus(buttons.items, start, self.t))

    def _carry_out(self, step: Step, buttons: ScreenButtons) -> None:
        self._focus(buttons, step.focus)
        if step.say:
            self._say(step.say)
        if step.repeat:
            self.app.speech.repeat()
        screen = self.app.root.current
        if step.press and step.focus is not None:
            buttons.widgets[step.focus].trigger_action(duration=0)
            if self.app.root.current == screen:
                self._after_press(step.focus, buttons)
        if step.act is not None:
            self._act(*step.act)
            if step.say_typed and self.app.root.current == screen:
                count = typed_count(self._buttons().typed)
                self._say(self.t(typed_message(count)))

    def _after_press(self, index: int, before: ScreenButtons) -> None:
        """Same screen after a press: keep the focus where it was (the
        buttons may have been rebuilt), say it again if its words changed
        (an option now marked as chosen), and say the screen's words the
        press changed (the number of copies)."""
        buttons = self._buttons()
        kept = buttons.index(self.focused)
        if kept is None and buttons.items:
            kept = min(index, len(buttons.items) - 1)
        self._focus(buttons, kept)
        if kept is not None and buttons.items[kept].label != before.items[index].label:
            self._say(announce_focus(buttons.items, kept, self.t))
        self._say(", ".join(changed_words(before.words, buttons.words)))

    def _act(self, action: str, arg: str) -> None:
        try:
            self.app.act(action, arg)
        except KeyError:  # this touchscreen has no such action (yet): nothing happens
            log.warning("keypad action not available here", extra={"action": action})

    def _focus(self, buttons: ScreenButtons, index: int | None) -> None:
        widget = buttons.widgets[index] if index is not None else None
        if self.focused is not None and self.focused is not widget:
            _show_ring(self.focused, False)
        self.focused = widget
        if widget is not None:
            _show_ring(widget, self.engaged)

    def _say(self, text: str) -> None:
        if text:
            self.app.speech.say(text)

    def _check_presence(self) -> None:
        if self.presence is not None:
            self.presence.check()


def _show_ring(widget: Widget, shown: bool) -> None:
    if hasattr(widget, "focused"):
        widget.focused = shown
