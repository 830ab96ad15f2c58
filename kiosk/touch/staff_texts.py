"""The words of the staff call screen (both touchscreens), and which of them
a call's phase shows. Message ids for the Babel catalogues; the place and
telephone number from ``[staff_call]`` are inserted as configured."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kiosk.touch.staffcall import CallPhase, CallStatus
from kiosk.touch.texts import N_
from sync.config import StaffCallSection

CALL_STAFF = N_("Call staff")
CALLING = N_("Calling staff…")
ALERTED = N_("Staff has been called. Please wait here.")
ON_THE_WAY = N_("A member of staff is on the way. Please wait here.")
UNREACHABLE = N_("Staff could not be reached.")
GO_TO = N_("Please go to {where}.")
GO_DEFAULT = N_("Please go to the reception desk, or ask someone nearby for help.")
CALL_PHONE = N_("Or call {phone}.")
FINISHED = N_("Thank you.")


@dataclass(frozen=True)
class StaffWords:
    """Message ids (and the values they take) for the staff screen."""

    title: str
    body: str = ""
    next_step: str = ""
    values: dict[str, str] = field(default_factory=dict)


def staff_words(status: CallStatus, settings: StaffCallSection) -> StaffWords:
    if status.phase is CallPhase.ON_THE_WAY:
        return StaffWords(ON_THE_WAY)
    if status.phase is CallPhase.ALERTED:
        return StaffWords(ALERTED)
    if status.phase is CallPhase.FINISHED:
        return StaffWords(FINISHED)
    if status.phase is CallPhase.CALLING:
        return StaffWords(CALLING)
    values = {"where": settings.where, "phone": settings.phone}
    go = GO_TO if settings.where else GO_DEFAULT
    return StaffWords(UNREACHABLE, go, CALL_PHONE if settings.phone else "", values)


def staff_lines(
    status: CallStatus, settings: StaffCallSection, t: Callable[..., str]
) -> tuple[str, str, str]:
    """Title, body and next step of the staff screen, translated with ``t``."""
    words = staff_words(status, settings)

    def say(message: str) -> str:
        return t(message, **words.values) if message else ""

    return say(words.title), say(words.body), say(words.next_step)
