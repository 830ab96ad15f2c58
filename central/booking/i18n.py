"""The site's words and dates in the resident's language (Babel catalogues
under ``locale/``, like the dashboard's), and which language a request gets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_skeleton

from central.errors import BookingRefused
from central.reservations.rules import REFUSAL_MESSAGES
from foundation import languages
from foundation.i18n import Catalogues

CATALOGUES = Catalogues(
    Path(__file__).resolve().parent / "locale", "booking", languages.DEFAULT_LANGUAGE
)
# Each language in its own name, for the switch and the registration form.
LANGUAGE_NAMES = {entry.code: entry.name for entry in languages.LANGUAGES}

# Refusals that are the services' own (not in rules.REFUSAL_MESSAGES), and the
# site's, in plain words (message ids; the catalogues translate them).
SITE_MESSAGES = {
    "unknown_member": "We could not find your membership. Please contact the facility.",
    "end_not_after_start": "Please choose a start and an end time.",
    "unknown_room": "That room does not exist (any more).",
    "not_found": "That page does not exist, or is not yours.",
    "member_not_active": "Your membership is suspended, so no enrolment code can be issued.",
    "bad_time": "That time could not be read. Please choose a slot from the list.",
    "form_expired": "The form expired. Please go back, reload the page and try again.",
}
# The kinds of closure, as the ``closed`` refusal names them.
CLOSURE_KINDS = {
    "maintenance": "maintenance",
    "holiday": "holiday",
    "other": "other reasons",
}


def pick(candidates: list[str | None], accept_language: str) -> str:
    """The first offered language of ``candidates`` (the switch, the member's
    choice, the cookie), then of Accept-Language by preference; tags are
    mapped to the registry's codes (zh-TW -> zh-Hant, pt -> pt-BR, ...)."""
    known = CATALOGUES.languages()
    for tag in [c for c in candidates if c] + accepted(accept_language):
        code = languages.match(tag)
        if code in known:
            return str(code)
    return CATALOGUES.default


def accepted(header: str) -> list[str]:
    """The tags of an Accept-Language header, most preferred first (q=0: refused)."""
    weighted = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag.strip() and tag.strip() != "*" and quality > 0:
            weighted.append((-quality, position, tag.strip()))
    return [tag for _q, _p, tag in sorted(weighted)]


@dataclass(frozen=True)
class Words:
    """Translation and formatting in one language."""

    lang: str

    @classmethod
    def preferred(cls, language: str) -> Words:
        """The words of a member's stored language (an offered one, or the
        nearest: zh-TW from an import means zh-Hant; unknown: Japanese)."""
        return cls(pick([language], ""))

    def __call__(self, message: str, **values: object) -> str:
        return CATALOGUES.translate(self.lang, message, **values)

    def refusal(self, refused: BookingRefused) -> str:
        message = REFUSAL_MESSAGES.get(refused.code)  # type: ignore[call-overload]
        message = message or SITE_MESSAGES.get(refused.code, refused.message)
        values = dict(refused.values)
        if "kind" in values:
            kind = str(values["kind"])
            values["kind"] = self(CLOSURE_KINDS.get(kind, kind))
        return self(str(message), **values)

    def day(self, value: date) -> str:
        """A calendar day with its weekday, e.g. 2027年1月17日(日) / Sun 17 Jan 2027
        (Chinese and Korean in their own order, from Babel)."""
        locale = languages.babel_locale(self.lang)
        if locale == "ja":
            return format_date(value, "y年M月d日(EEE)", locale=locale)
        if locale in ("zh_Hans", "zh_Hant", "ko"):
            return format_skeleton("yMMMEd", value, locale=locale)
        return format_date(value, "EEE d MMM y", locale=locale)

    def time(self, moment: datetime, zone: ZoneInfo) -> str:
        return moment.astimezone(zone).strftime("%H:%M")

    def when(self, starts: datetime, ends: datetime, zone: ZoneInfo) -> str:
        """A booking's time in the facility's zone: day, start–end."""
        local = starts.astimezone(zone)
        return f"{self.day(local.date())} {self.time(starts, zone)}–{self.time(ends, zone)}"

    def moment(self, moment: datetime, zone: ZoneInfo) -> str:
        local = moment.astimezone(zone)
        return f"{self.day(local.date())} {local:%H:%M}"
