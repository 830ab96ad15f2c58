"""The site's words and dates in the resident's language (Babel catalogues
under ``locale/``, like the dashboard's), and which language a request gets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date

from central.errors import BookingRefused
from central.reservations.rules import REFUSAL_MESSAGES
from foundation.i18n import Catalogues

CATALOGUES = Catalogues(Path(__file__).resolve().parent / "locale", "booking", "ja")
LANGUAGE_NAMES = {"ja": "日本語", "en": "English"}

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
    """The first known language of ``candidates``, then of Accept-Language."""
    known = CATALOGUES.languages()
    for candidate in candidates:
        if candidate and candidate.split("-")[0] in known:
            return candidate.split("-")[0]
    for part in accept_language.split(","):
        code = part.split(";")[0].strip().split("-")[0].lower()
        if code in known:
            return code
    return CATALOGUES.default


@dataclass(frozen=True)
class Words:
    """Translation and formatting in one language."""

    lang: str

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
        """A calendar day with its weekday, e.g. 2027年1月17日(日) / Sun 17 Jan 2027."""
        pattern = "y年M月d日(EEE)" if self.lang == "ja" else "EEE d MMM y"
        return format_date(value, pattern, locale=self.lang)

    def time(self, moment: datetime, zone: ZoneInfo) -> str:
        return moment.astimezone(zone).strftime("%H:%M")

    def when(self, starts: datetime, ends: datetime, zone: ZoneInfo) -> str:
        """A booking's time in the facility's zone: day, start–end."""
        local = starts.astimezone(zone)
        return f"{self.day(local.date())} {self.time(starts, zone)}–{self.time(ends, zone)}"

    def moment(self, moment: datetime, zone: ZoneInfo) -> str:
        local = moment.astimezone(zone)
        return f"{self.day(local.date())} {local:%H:%M}"
