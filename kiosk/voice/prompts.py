"""What each screen says aloud, from what the screen shows (pure, no Kivy).

A screen's prompt is its own words read from the view (title, body, the
choices) followed by how to choose (:mod:`kiosk.voice.texts`), in the
person's language. The tables are keyed by screen name and name view
properties, so this module imports no flow: each touchscreen (and the
enrolment mode) hands its table to the app.

Each sentence is spoken from its own cached audio file, so a prompt is a
tuple of sentences and the same sentence is synthesised once for every
screen that says it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kiosk.i18n import translate
from kiosk.touch import texts as tt
from kiosk.voice import texts as vx

# Reads a property of the screen's views (the app's view, then a mode's).
Reader = Callable[[str], Any]
FILLED_DOT = "●"
_DIGIT = re.compile(r"\d")
# Kivy markup tags (labels that mix fonts, kiosk.touch.mixed): never spoken.
_MARKUP_TAG = re.compile(
    r"\[/?(?:b|i|u|s|sub|sup|font|size|color|ref|anchor|font_family|font_context"
    r"|font_features|text_language)(?:=[^\]]*)?\]"
)
# A name kept in Japanese with its translation beside it: 住民票の写し（...）.
_BESIDE = re.compile(r"^(?P<japanese>[^（]+)（(?P<translation>.+)）$")
_JAPANESE_VOICES = ("ja", "ja-x-easy")


@dataclass(frozen=True)
class ScreenSpeech:
    """How one screen is spoken. ``fields``: view properties read aloud in
    order (empty ones skipped); ``flags``: (boolean property, message id)
    said only while the flag is set; ``items``: a list property of choices
    (``kinds`` or ``options``); ``how``: instruction message ids;
    ``count_field``: dots whose filled count is spoken in words as it
    changes; ``tries_field``: a text whose number is spoken as words;
    ``secret``: no sentence may contain a digit (the PIN screen)."""

    fields: tuple[str, ...] = ()
    flags: tuple[tuple[str, str], ...] = ()
    items: str = ""
    how: tuple[str, ...] = ()
    count_field: str = ""
    tries_field: str = ""
    secret: bool = False


@dataclass(frozen=True)
class Prompt:
    """A screen's spoken sentences; ``key`` tells two screens apart (a new
    key interrupts what is being said)."""

    key: str
    language: str
    sentences: tuple[str, ...]


LANGUAGE = ScreenSpeech(how=(vx.CHOOSE_LANGUAGE,))
RESULT = ScreenSpeech(fields=("title", "body", "next_step"))

CHECKIN: Mapping[str, ScreenSpeech] = {
    "attract": ScreenSpeech(
        fields=("t_tap", "t_or_code"), how=(vx.CHECKIN_HOW, vx.CHANGE_LANGUAGE)
    ),
    "language": LANGUAGE,
    "keypad": ScreenSpeech(fields=("t_enter_code",), how=(vx.CODE_HOW,)),
    "result": RESULT,
    "staff": ScreenSpeech(fields=("body",)),
}

ISSUANCE: Mapping[str, ScreenSpeech] = {
    "attract": ScreenSpeech(fields=("t_service",), how=(vx.START_HOW, vx.CHANGE_LANGUAGE)),
    "language": LANGUAGE,
    "place_card": ScreenSpeech(fields=("t_place_card", "t_place_hint")),
    "wait": ScreenSpeech(fields=("wait_text",)),
    "pin": ScreenSpeech(
        flags=(("pin_error", vx.WRONG_PIN), ("last_try", vx.LAST_TRY_SPOKEN)),
        how=(vx.PIN_SPOKEN, vx.PIN_PRIVATE),
        count_field="pin_dots",
        tries_field="tries_text",
        secret=True,
    ),
    "kinds": ScreenSpeech(fields=("t_choose_kind",), items="kinds", how=(vx.KINDS_HOW,)),
    "options": ScreenSpeech(
        fields=("t_options", "t_options_hint"), items="options", how=(vx.OPTIONS_HOW,)
    ),
    "copies": ScreenSpeech(fields=("t_copies", "copies_text"), how=(vx.COPIES_HOW,)),
    "confirm": ScreenSpeech(
        fields=("t_confirm", "confirm_line", "total_text"), how=(vx.CONFIRM_HOW,)
    ),
    "printing": ScreenSpeech(fields=("t_printing", "t_printing_hint")),
    "take_card": ScreenSpeech(fields=("t_take_card_hint",), how=(vx.TAKE_CARD_SPOKEN,)),
    "thanks": ScreenSpeech(fields=("t_thanks", "t_take_certs", "t_thanks_body")),
    "notice": RESULT,
}

ENROLMENT: Mapping[str, ScreenSpeech] = {
    "enrol_code": ScreenSpeech(fields=("t_enter_code", "t_code_hint"), how=(vx.ENROL_CODE_HOW,)),
    "enrol_wait": ScreenSpeech(fields=("title",)),
    "enrol_card": ScreenSpeech(
        fields=("card_notice", "t_tap_card", "t_tap_hint"), how=(vx.ENROL_CARD_HOW,)
    ),
    "enrol_result": RESULT,
}


def has_digit(text: str) -> bool:
    """Any decimal digit, full-width ones too."""
    return bool(_DIGIT.search(text))


def filled_count(dots: str) -> int:
    return dots.count(FILLED_DOT)


def count_words(language: str, count: int) -> str:
    """How many PIN digits are typed, in words (never the digits)."""
    index = max(0, min(count, len(vx.DIGITS_ENTERED) - 1))
    return translate(language, vx.DIGITS_ENTERED[index])


def tries_words(language: str, tries_text: str) -> str:
    """The tries left (a number in ``tries_text``) in words; empty when unknown."""
    found = re.search(r"\d+", tries_text)
    tries = int(found.group()) if found else 0
    if 0 < tries < len(vx.TRIES_LEFT_WORDS):
        return translate(language, vx.TRIES_LEFT_WORDS[tries])
    return ""


def spoken(text: str, language: str) -> str:
    """What a label says aloud: its markup removed and, in a language other
    than Japanese, a Japanese name with its translation beside it read as the
    translation alone (the voice of that language cannot read kanji)."""
    plain = _MARKUP_TAG.sub("", text)
    plain = plain.replace("&bl;", "[").replace("&br;", "]").replace("&amp;", "&").strip()
    beside = _BESIDE.match(plain)
    if beside and language not in _JAPANESE_VOICES:
        return beside.group("translation").strip()
    return plain


def screen_sentences(
    speech: ScreenSpeech, screen: str, language: str, read: Reader
) -> tuple[str, ...]:
    """Everything ``screen`` says, before the secret screens' digit guard."""
    said: list[str] = [str(read(name) or "") for name in speech.fields]
    said += [translate(language, message) for flag, message in speech.flags if read(flag)]
    if speech.tries_field:
        said.append(tries_words(language, str(read(speech.tries_field) or "")))
    said += _item_sentences(speech.items, read)
    said += [translate(language, message) for message in speech.how]
    if speech.count_field:
        count = filled_count(str(read(speech.count_field) or ""))
        if count:
            said.append(count_words(language, count))
    cleaned = (spoken(s, language) for s in said if s)
    return tuple(s for s in cleaned if s)


def _item_sentences(items: str, read: Reader) -> list[str]:
    if not items:
        return []
    said: list[str] = []
    for item in read(items) or []:
        if items == "kinds":  # (id, label, fee text)
            said += [str(item[1]), str(item[2])]
        elif items == "options":  # (id, label, [(value, label, selected)])
            chosen = [str(label) for _v, label, selected in item[2] if selected]
            said += [str(item[1]), *chosen]
    return said


def prompt_for(
    table: Mapping[str, ScreenSpeech], screen: str, language: str, read: Reader
) -> Prompt | None:
    """The prompt of ``screen`` (None when the table does not know it). The
    idle countdown, when shown, is said instead of the screen. On a secret
    screen a sentence with a digit is never said."""
    if str(read("countdown") or ""):
        still = (str(read("t_still_there") or ""), translate(language, vx.STILL_THERE_HOW))
        return Prompt(f"{screen}/countdown", language, tuple(s for s in still if s))
    speech = table.get(screen)
    if speech is None:
        return None
    sentences = screen_sentences(speech, screen, language, read)
    if speech.secret:
        sentences = tuple(s for s in sentences if not has_digit(s))
    return Prompt(screen, language, sentences)


def count_of(table: Mapping[str, ScreenSpeech], screen: str, read: Reader) -> int | None:
    """The PIN digits typed on ``screen`` (None: this screen counts nothing)."""
    speech = table.get(screen)
    if speech is None or not speech.count_field:
        return None
    return filled_count(str(read(speech.count_field) or ""))


def shared_words(language: str) -> list[str]:
    """The shared words a screen may read (for the cache build)."""
    return [translate(language, m) for m in (tt.STILL_THERE, vx.STILL_THERE_HOW)]


def expand(message: str, values: Mapping[str, Sequence[object]]) -> list[dict[str, object]]:
    """Every combination of known values for ``message``'s placeholders;
    empty when one of them has no known values (it is synthesised at run
    time instead)."""
    names = sorted(set(re.findall(r"{(\w+)}", message)))
    combos: list[dict[str, object]] = [{}]
    for name in names:
        options = values.get(name, ())
        if not options:
            return []
        combos = [{**c, name: v} for c in combos for v in options]
    return combos
