"""What each check-in result tells the person, in plain words: what happened
and what to do next. Pure: a result in, message ids and values out; the
screen translates them (``kiosk.i18n``).

Message ids are marked with :func:`N_` so ``pybabel extract -k N_`` finds
them; ``tests/unit/test_checkin.py`` checks every catalogue has them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import tzinfo

from kiosk.checkin.access import Reason
from kiosk.checkin.service import CheckinResult, Outcome
from kiosk.touch.texts import N_

# Check-in's screen texts outside the result screens (the words both
# touchscreens show are in kiosk.touch.texts).
TAP_YOUR_CARD = N_("Tap your card")
OR_ENTER_CODE = N_("or enter your reservation code")
ENTER_CODE = N_("Enter reservation code")
CALL_STAFF = N_("Call staff")
STAFF_CALLED = N_("Staff has been called. Please wait here.")
CACHE_STALE_NOTICE = N_("Reservation data may be out of date.")
# On the attract screen while the door is in lockdown (a remote door.lockdown).
ENTRANCE_CLOSED = N_("This entrance is closed now. Please contact staff.")
# On the attract screen while the device store's disk is full: check-ins still
# work from the cache, but their events are not recorded (docs/sync.md).
STORE_FULL_NOTICE = N_("This terminal's storage is full. Please tell staff.")


@dataclass(frozen=True)
class ResultMessage:
    """Title, what happened, what to do next (message ids) and their values."""

    title: str
    body: str
    next_step: str
    values: dict[str, object] = field(default_factory=dict)
    success: bool = False


def result_message(
    result: CheckinResult, door_names: dict[str, str], timezone: tzinfo
) -> ResultMessage:
    """The words for a check-in result."""
    room = door_names.get(result.door, result.door)
    if result.outcome is Outcome.GRANTED:
        title = N_("Welcome") if result.reason != Reason.STAFF else N_("Staff card accepted")
        return ResultMessage(
            title,
            N_("{room} is open for {seconds} seconds."),
            N_("Please go in now. The door locks again by itself."),
            {"room": room, "seconds": round(result.unlocked_seconds)},
            success=True,
        )
    if result.outcome is Outcome.LOCK_UNAVAILABLE:
        return ResultMessage(
            N_("The door did not open"),
            N_("The door controller is not responding."),
            N_("Please press Call staff."),
        )
    if result.outcome is Outcome.LOCKDOWN:
        return ResultMessage(
            N_("This entrance is closed"),
            N_("Staff have closed {room} for now. The door stays locked."),
            N_("Please contact staff, or press Call staff."),
            {"room": room},
        )
    if result.outcome is Outcome.UNKNOWN_CARD:
        return ResultMessage(
            N_("This card cannot be used"),
            N_("Please use your member card or My Number Card."),
            N_("If you have a reservation code, enter it instead."),
        )
    if result.outcome is Outcome.UNREADABLE_CARD:
        return ResultMessage(
            N_("The card could not be read"),
            N_("Please hold the card flat on the reader until you hear the sound."),
            N_("Try once more. If it still fails, press Call staff."),
        )
    return _denied(result, room, door_names, timezone)


def _denied(
    result: CheckinResult, room: str, door_names: dict[str, str], timezone: tzinfo
) -> ResultMessage:
    decision = result.decision
    assert decision is not None
    title = N_("The door stays locked")
    when = decision.opens_at.astimezone(timezone).strftime("%H:%M") if decision.opens_at else ""
    match decision.reason:
        case Reason.TOO_EARLY:
            return ResultMessage(
                title, N_("Your reservation has not started yet."),
                N_("The door opens at {time}."), {"time": when},
            )  # fmt: skip
        case Reason.ENDED:
            return ResultMessage(
                title, N_("Your reservation has ended."), N_("For a new reservation, ask staff.")
            )
        case Reason.OTHER_DOOR:
            other = door_names.get(decision.other_door or "", decision.other_door or "")
            return ResultMessage(
                title, N_("Your reservation is for {other}, not {room}."),
                N_("Please go to {other}."), {"other": other, "room": room},
            )  # fmt: skip
        case Reason.CANCELLED:
            return ResultMessage(
                title,
                N_("This reservation was cancelled."),
                N_("For a new reservation, ask staff."),
            )
        case Reason.CLOCK_UNTRUSTED:
            return ResultMessage(
                title, N_("Check-in is paused because the clock is not set."),
                N_("Please press Call staff."),
            )  # fmt: skip
        case Reason.STALE_CACHE:
            return ResultMessage(
                title, N_("Check-in is paused because reservation data is out of date."),
                N_("Please press Call staff."),
            )  # fmt: skip
        case Reason.CODE_LOCKED:
            return ResultMessage(
                title, N_("Too many wrong codes."), N_("Please try again after {time}."),
                {"time": when},
            )  # fmt: skip
    if result.via == "code":
        return ResultMessage(
            title, N_("There is no reservation with this code."),
            N_("Check the code and enter it again."),
        )  # fmt: skip
    return ResultMessage(
        title, N_("This card is not registered for a reservation."),
        N_("Check the date, time and room of your reservation, or ask staff."),
    )  # fmt: skip
