"""A USB numeric keypad driving both touchscreens, in plain Python (no Kivy).

Blind and low-vision people (and anyone who prefers keys) use the kiosk with
the numeric keypad many certificate machines have, beside the touchscreen:
keys move a focus over the current screen's buttons, choose, go back, ask
for the screen's prompt again and call staff. On the screens where digits
are typed (the PIN, the reservation and enrolment codes) the digit keys type
through the same ``act("key", digit)`` path as the on-screen keys, so the
masking and the tries rules are the touchscreen's own.

:func:`key_map` turns Kivy keycodes into :class:`Key` (the digit printed on
the key and what it does elsewhere); :func:`navigate` decides what one key
does on one screen (:class:`Step`); the Kivy adapter
(:mod:`kiosk.touch.keyfocus`) collects the screen's buttons, carries the
step out and speaks. The PIN is never spoken: on digit screens the speech
says how many digits are typed, in words (:func:`typed_message`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from kiosk.touch.texts import N_

# What the focus says: the button's words and where it is on the screen.
FOCUS = N_("{label}, {index} of {count}")
# A chosen option (the screen marks it "✓").
SELECTED = N_("{label}, selected")
# How many digits are typed on a PIN or code screen: words, never the digits.
TYPED = (
    N_("No digits entered."),
    N_("One digit entered."),
    N_("Two digits entered."),
    N_("Three digits entered."),
    N_("Four digits entered."),
    N_("Five digits entered."),
    N_("Six digits entered."),
    N_("Seven digits entered."),
    N_("Eight digits entered."),
)
TYPED_MANY = N_("Many digits entered.")

# The keys a call-staff key may be (digits type on the PIN screen, so none of them).
STAFF_KEYS = ("*", "/", "-", "+")
# Symbols the screens put before a button's words (shape, not colour); not spoken.
_SYMBOLS = ("✓", "−", "+", "×", "⚠", "▲", "▼", "!")
# The masked and still-open places of a PIN or code shown as dots.
FILLED, OPEN = "●", "○"


class Speech(Protocol):
    """What the keypad needs from voice guidance (:mod:`kiosk.voice` fulfils it)."""

    def say(self, text: str) -> None:
        """Speak ``text`` (already in the person's language)."""

    def repeat(self) -> None:
        """Speak the current screen's prompt again."""


class NullSpeech:
    """No voice guidance on this kiosk: nothing is said."""

    def say(self, text: str) -> None:
        pass

    def repeat(self) -> None:
        pass


class Intent(StrEnum):
    """What a key does on a screen where digits are not typed."""

    NEXT = "next"
    PREVIOUS = "previous"
    FIRST = "first"
    LAST = "last"
    CHOOSE = "choose"
    BACK = "back"
    REPEAT = "repeat"
    STAFF = "staff"
    DELETE = "delete"  # the last typed digit, on digit screens
    NONE = "none"


@dataclass(frozen=True)
class Key:
    """A keypad key: ``digit`` is the digit printed on it ('' for none)."""

    name: str
    digit: str
    intent: Intent


# Kivy keycodes (kivy.core.window.Keyboard.keycodes). A keypad with NumLock
# off sends navigation keys instead of digits; each one is listed with the
# digit printed on the same key, so digit screens still get digits.
_KEYS: tuple[tuple[int, str, str, Intent], ...] = (
    (256, "KP_0", "0", Intent.NONE),
    (257, "KP_1", "1", Intent.LAST),
    (258, "KP_2", "2", Intent.NEXT),
    (259, "KP_3", "3", Intent.NONE),
    (260, "KP_4", "4", Intent.PREVIOUS),
    (261, "KP_5", "5", Intent.CHOOSE),
    (262, "KP_6", "6", Intent.NEXT),
    (263, "KP_7", "7", Intent.FIRST),
    (264, "KP_8", "8", Intent.PREVIOUS),
    (265, "KP_9", "9", Intent.NONE),
    (266, "KP_Decimal", "", Intent.DELETE),
    (267, "KP_Divide", "", Intent.NONE),
    (268, "KP_Multiply", "", Intent.STAFF),
    (269, "KP_Subtract", "", Intent.BACK),
    (270, "KP_Add", "", Intent.REPEAT),
    (271, "KP_Enter", "", Intent.CHOOSE),
    (13, "Return", "", Intent.CHOOSE),
    (8, "BackSpace", "", Intent.DELETE),
    (9, "Tab", "", Intent.NEXT),
    # NumLock off: the same keys as navigation keys.
    (277, "Insert", "0", Intent.NONE),
    (279, "End", "1", Intent.LAST),
    (274, "Down", "2", Intent.NEXT),
    (281, "Page_Down", "3", Intent.NONE),
    (276, "Left", "4", Intent.PREVIOUS),
    (275, "Right", "6", Intent.NEXT),
    (278, "Home", "7", Intent.FIRST),
    (273, "Up", "8", Intent.PREVIOUS),
    (280, "Page_Up", "9", Intent.NONE),
    (127, "Delete", "", Intent.DELETE),
    # Keypads that send the main keyboard's characters (digits: below).
    (46, "period", "", Intent.DELETE),
    (47, "slash", "", Intent.NONE),
    (42, "asterisk", "", Intent.STAFF),
    (45, "minus", "", Intent.BACK),
    (43, "plus", "", Intent.REPEAT),
)
# The label on each symbol key, for the configured call-staff key.
_SYMBOL_CODES = {"*": (268, 42), "/": (267, 47), "-": (269, 45), "+": (270, 43)}


def key_map(call_staff_key: str = "*") -> dict[int, Key]:
    """Kivy keycode -> :class:`Key`. ``call_staff_key`` (one of
    :data:`STAFF_KEYS`, or '' for none) calls staff; the key that does so by
    default ("*") takes over that key's own meaning, so nothing is lost."""
    if call_staff_key and call_staff_key not in STAFF_KEYS:
        raise ValueError(f"call_staff_key must be one of {STAFF_KEYS} or empty")
    by_code = {code: Key(name, digit, intent) for code, name, digit, intent in _KEYS}
    # Digits of the main keyboard row do what the keypad's do.
    for d in range(10):
        keypad = by_code[256 + d]
        by_code[48 + d] = Key(str(d), str(d), keypad.intent)
    if call_staff_key != "*":
        replaced = (
            by_code[_SYMBOL_CODES[call_staff_key][0]].intent if call_staff_key else Intent.NONE
        )
        for code in _SYMBOL_CODES["*"]:
            by_code[code] = Key(by_code[code].name, "", replaced)
        for code in _SYMBOL_CODES.get(call_staff_key, ()):
            by_code[code] = Key(by_code[code].name, "", Intent.STAFF)
    return by_code


@dataclass(frozen=True)
class Item:
    """A button of the current screen, in reading order. ``primary``: the
    screen's main action (filled button); ``back``: it leaves the step
    (back or cancel)."""

    label: str
    enabled: bool = True
    primary: bool = False
    back: bool = False


@dataclass(frozen=True)
class Step:
    """What one key does. ``focus``: the item focused afterwards (None: none);
    ``press``: dispatch that item's release, as a tap would; ``act``: an
    ``app.act(action, arg)`` call; ``say``: words to speak now;
    ``repeat``: ask for the screen's prompt again; ``say_typed``: after the
    act, say how many digits are typed."""

    focus: int | None = None
    press: bool = False
    act: tuple[str, str] | None = None
    say: str = ""
    repeat: bool = False
    say_typed: bool = False


Translate = Callable[..., str]


def first_focus(items: Sequence[Item]) -> int | None:
    """Where the focus starts on a new screen: its main action. A screen
    without one ("place your card": only back and cancel) starts with no
    focus, so a key pressed while waiting cannot leave the step unheard."""
    return next((i for i, item in enumerate(items) if item.enabled and item.primary), None)


def _start(items: Sequence[Item]) -> int | None:
    """The first key without a focus: the main action, else the first button."""
    first = first_focus(items)
    if first is not None:
        return first
    return next((i for i, item in enumerate(items) if item.enabled), None)


def spoken_label(label: str, t: Translate) -> str:
    """A button's words as they are said: line breaks as pauses, the
    leading symbol left out, a chosen option said to be selected."""
    words = ", ".join(part.strip() for part in label.splitlines() if part.strip())
    selected = words.startswith("✓")
    for symbol in _SYMBOLS:
        if words.startswith(symbol):
            words = words[len(symbol) :].strip()
            break
    return t(SELECTED, label=words) if selected else words


def announce(items: Sequence[Item], index: int | None, t: Translate) -> str:
    """Says "Pay and print, 3 of 5": the focused button and its place among the
    enabled ones ('' when nothing is focused)."""
    if index is None:
        return ""
    enabled = [i for i, item in enumerate(items) if item.enabled]
    return t(
        FOCUS,
        label=spoken_label(items[index].label, t),
        index=enabled.index(index) + 1,
        count=len(enabled),
    )


def changed_words(before: Sequence[str], after: Sequence[str]) -> list[str]:
    """The screen's words (its labels, in reading order) that a press on
    the same screen changed, e.g. the number of copies after "One more".
    A screen whose labels were rebuilt differently says nothing."""
    if len(before) != len(after):
        return []
    return [new for old, new in zip(before, after, strict=True) if new != old and new.strip()]


def typed_count(shown: str) -> int:
    """Digits typed, from what the screen shows: filled dots (a PIN or
    reservation code) or the digits themselves (an enrolment code)."""
    return sum(1 for c in shown if c == FILLED or c.isdigit())


def typed_message(count: int) -> str:
    """The message id saying how many digits are typed (never which)."""
    return TYPED[count] if 0 <= count < len(TYPED) else TYPED_MANY


def navigate(
    key: Key, items: Sequence[Item], focus: int | None, digit_entry: bool, t: Translate
) -> Step:
    """What ``key`` does on a screen with ``items`` (reading order) and the
    focus at ``focus``; ``digit_entry``: digits are typed on this screen."""
    current = focus if focus is not None and _usable(items, focus) else None
    intent = key.intent
    if intent is Intent.REPEAT:
        return Step(focus=current, repeat=True)
    if intent is Intent.STAFF:
        return Step(focus=current, act=("call_staff", ""))
    if digit_entry:
        return _on_digit_screen(key, items, current)
    enabled = [i for i, item in enumerate(items) if item.enabled]
    if not enabled:
        # Nothing to choose (waiting, printing, "place your card"): what the
        # screen asks for is all there is to hear.
        return Step(repeat=intent in (Intent.NEXT, Intent.PREVIOUS, Intent.CHOOSE))
    if intent is Intent.BACK:
        return _back(items, current)
    if intent is Intent.CHOOSE:
        if current is None:  # nothing focused yet: say what would be chosen first
            target = _start(items)
            return Step(focus=target, say=announce(items, target, t))
        return Step(focus=current, press=True)
    target = _moved(intent, enabled, current, items)
    if target is None:
        return Step(focus=current)
    return Step(focus=target, say=announce(items, target, t))


def _usable(items: Sequence[Item], index: int) -> bool:
    return 0 <= index < len(items) and items[index].enabled


def _on_digit_screen(key: Key, items: Sequence[Item], current: int | None) -> Step:
    if key.digit:
        return Step(act=("key", key.digit), say_typed=True)
    if key.intent is Intent.CHOOSE:
        return Step(act=("key", "ok"), say_typed=True)
    if key.intent is Intent.DELETE:
        return Step(act=("key", "clear"), say_typed=True)
    if key.intent is Intent.BACK:
        return _back(items, None)
    return Step()


def _back(items: Sequence[Item], current: int | None) -> Step:
    """Back presses the screen's own back (or cancel) button, as a tap would;
    a screen without one has no way back."""
    way_back = next((i for i, item in enumerate(items) if item.enabled and item.back), None)
    if way_back is None:
        return Step(focus=current)
    return Step(focus=way_back, press=True)


def _moved(
    intent: Intent, enabled: list[int], current: int | None, items: Sequence[Item]
) -> int | None:
    if intent is Intent.FIRST:
        return enabled[0]
    if intent is Intent.LAST:
        return enabled[-1]
    if intent not in (Intent.NEXT, Intent.PREVIOUS):
        return None
    if current is None:
        return _start(items)
    position = enabled.index(current)
    step = 1 if intent is Intent.NEXT else -1
    return enabled[(position + step) % len(enabled)]  # wraps around at both ends
