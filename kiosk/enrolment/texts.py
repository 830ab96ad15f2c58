"""The words of card enrolment (message ids for the Babel catalogues): the
screens, and for every way it can end what happened and what to do next.

Pure: :func:`outcome_words` maps a refusal code (``contracts.enrolment
.ERROR_CODES``, or a device-side reason) to message ids; the session
translates them. ``tests/unit/test_enrolment.py`` checks every catalogue
has them all and every contract code has its words.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.touch.texts import N_

ENROL_A_CARD = N_("Enrol a card")
ENTER_CODE = N_("Enter your 8-digit enrolment code")
CODE_HINT = N_("Staff or the booking site gave you this code.")
CHECKING_CODE = N_("Checking the code…")
TAP_CARD = N_("Tap the card you want to enrol")
TAP_HINT = N_("A member card or a My Number Card. It is read once; no PIN is needed.")
SENDING = N_("Enrolling your card…")
CANCEL = N_("Cancel")
ENTER_AGAIN = N_("Enter the code again")
UNSUPPORTED_CARD = N_("This card cannot be enrolled. Please tap a member card or a My Number Card.")
UNREADABLE_CARD = N_("The card could not be read. Hold it flat on the reader and try again.")

# Device-side reasons (not central's codes) the result screen explains.
CENTRAL_UNREACHABLE = "central_unreachable"


@dataclass(frozen=True)
class Words:
    """Title, what happened, what to do next (message ids)."""

    title: str
    body: str
    next_step: str


ENROLLED = Words(
    N_("Your card is enrolled"),
    N_("This card is now linked to your membership."),
    N_("Doors open for it within a few minutes. You can take your card."),
)
ALREADY_ENROLLED = Words(
    N_("Your card is enrolled"),
    N_("This card was already linked to your membership."),
    N_("There is nothing more to do. You can take your card."),
)

_NOT_ENROLLED = N_("The card was not enrolled")
_NEW_CODE = N_("Please get a new code from staff or on the booking site.")
_SEE_STAFF = N_("Please ask staff for help.")
_TRY_LATER = Words(
    _NOT_ENROLLED,
    N_("The enrolment service is not available right now."),
    N_("Please try again later. If it keeps failing, ask staff."),
)

REFUSALS: dict[str, Words] = {
    "code_invalid": Words(
        N_("The code was not accepted"),
        N_("There is no enrolment code like this one."),
        N_("Check the code and enter it again."),
    ),
    "code_expired": Words(N_("The code was not accepted"), N_("This code has expired."), _NEW_CODE),
    "code_used": Words(
        N_("The code was not accepted"), N_("This code has already been used."), _NEW_CODE
    ),
    "ticket_invalid": Words(
        _NOT_ENROLLED, N_("The enrolment took too long or was interrupted."), _NEW_CODE
    ),
    "member_suspended": Words(_NOT_ENROLLED, N_("Your membership is suspended."), _SEE_STAFF),
    "card_bound_elsewhere": Words(
        _NOT_ENROLLED,
        N_("This card is already enrolled to another member."),
        N_("Please use another card, or ask staff."),
    ),
    "card_limit": Words(
        _NOT_ENROLLED,
        N_("You already have as many cards as allowed."),
        N_("Remove a card on the booking site or ask staff, then try again."),
    ),
    "too_many_attempts": Words(
        N_("The code was not accepted"),
        N_("Too many wrong codes were entered at this kiosk."),
        N_("Please wait {minutes} minutes, then try again."),
    ),
    "device_unknown": Words(
        _NOT_ENROLLED, N_("This kiosk cannot enrol cards at the moment."), _SEE_STAFF
    ),
    "request_invalid": Words(_NOT_ENROLLED, N_("Something went wrong at this kiosk."), _SEE_STAFF),
    "service_unavailable": _TRY_LATER,
    CENTRAL_UNREACHABLE: _TRY_LATER,
}
# A code this build does not know (a newer central): still plain words.
UNKNOWN_REFUSAL = REFUSALS["request_invalid"]


def outcome_words(reason: str) -> Words:
    """What the result screen says for a refusal code or device-side reason."""
    return REFUSALS.get(reason, UNKNOWN_REFUSAL)
