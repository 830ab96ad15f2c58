"""Card enrolment at a device, as a pure state machine (no Kivy, no I/O).

Steps: code entry → redeeming (central turns the one-time code into a
ticket) → tap the card → sending (the card's reference, computed exactly as
check-in computes it, :mod:`kiosk.cards`) → enrolled or refused(reason) →
done (the touchscreen's own flow takes over again). Cancel and the idle
timeout go to done from any step, wiping the code and the ticket; a ticket
not used up is cancelled at central.

Each input returns the requests it needs (:class:`Redeem`, :class:`Enrol`,
:class:`CancelTicket`, :class:`Record`); a worker runs them off the UI loop
and hands results back with the ``generation`` they were asked in, so a
result for a person who has left is never shown to the next one.

Privacy: the code is shown while typed (a used code is no secret) but is
never in an event, a log line or a ``repr``; the card's reference goes only
to central, never into an event. Events: ``enrolment.started`` (the code
was accepted), ``enrolment.enrolled`` (``card_kind``), ``enrolment.refused``
(``code``: the contract's refusal code or ``central_unreachable``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from contracts.enrolment import CREDENTIAL_REF_PATTERN, CardIn, CardKind, CardOut, TicketOut
from foundation.languages import match
from kiosk.cards import CardSeen
from kiosk.enrolment.texts import CENTRAL_UNREACHABLE
from kiosk.touch.session import edit_digits

CODE_LENGTH = 8  # contracts.enrolment.CODE_PATTERN
# The card reader's kinds -> the contract's; other kinds cannot be enrolled.
CARD_KINDS: dict[str, CardKind] = {"member": "member_card", "mynumber": "mynumber_card"}
# A refusal after which typing the code again can help.
RETRYABLE = frozenset({"code_invalid"})


class EnrolmentScreen(StrEnum):
    """The enrolment screens (one module and ``.kv`` each); prefixed, as
    they are added to another touchscreen's screens."""

    CODE = "enrol_code"
    WAIT = "enrol_wait"
    CARD = "enrol_card"
    RESULT = "enrol_result"


class EnrolmentStep(StrEnum):
    CODE_ENTRY = "code_entry"
    REDEEMING = "redeeming"
    TAP_CARD = "tap_card"
    SENDING = "sending"
    ENROLLED = "enrolled"
    REFUSED = "refused"
    DONE = "done"  # left: the host touchscreen shows its attract screen

    @property
    def screen(self) -> EnrolmentScreen:
        """The screen showing this step (done: the one the mode opens on next)."""
        return SCREENS[self]


SCREENS = {
    EnrolmentStep.CODE_ENTRY: EnrolmentScreen.CODE,
    EnrolmentStep.REDEEMING: EnrolmentScreen.WAIT,
    EnrolmentStep.TAP_CARD: EnrolmentScreen.CARD,
    EnrolmentStep.SENDING: EnrolmentScreen.WAIT,
    EnrolmentStep.ENROLLED: EnrolmentScreen.RESULT,
    EnrolmentStep.REFUSED: EnrolmentScreen.RESULT,
    EnrolmentStep.DONE: EnrolmentScreen.CODE,
}
# Steps where the person acts (the idle timeout applies) and the result steps.
INTERACTIVE = frozenset({EnrolmentStep.CODE_ENTRY, EnrolmentStep.TAP_CARD})
RESULTS = frozenset({EnrolmentStep.ENROLLED, EnrolmentStep.REFUSED})


# --- requests to the worker, and its results -----------------------------------
@dataclass(frozen=True)
class Redeem:
    generation: int
    code: str = field(repr=False)  # never in a log line, even by accident


@dataclass(frozen=True)
class Enrol:
    generation: int
    card: CardIn = field(repr=False)


@dataclass(frozen=True)
class CancelTicket:
    ticket: str = field(repr=False)


@dataclass(frozen=True)
class Record:
    type: str
    data: dict[str, Any] = field(default_factory=dict)


Request = Redeem | Enrol | CancelTicket | Record


@dataclass(frozen=True)
class Redeemed:
    """``ticket``, or the refusal code (``central_unreachable`` without an answer)."""

    ticket: TicketOut | None = None
    refusal: str = ""
    retry_after_seconds: int | None = None


@dataclass(frozen=True)
class Sent:
    card: CardOut | None = None
    refusal: str = ""


# --- the flow ----------------------------------------------------------------------
@dataclass
class EnrolmentFlow:
    step: EnrolmentStep = EnrolmentStep.DONE
    generation: int = 0
    refusal: str = ""  # with REFUSED
    retry_after_seconds: int | None = None
    card_notice: str = ""  # on TAP_CARD: "unsupported" or "unreadable" after a bad tap
    status: str = ""  # with ENROLLED: enrolled | already_enrolled
    language: str = ""  # the member's preferred language, once the code is accepted
    _code: str = field(default="", repr=False)
    _ticket: TicketOut | None = field(default=None, repr=False)
    _kind: CardKind | None = None

    @property
    def code(self) -> str:
        """The digits typed so far (shown on the screen)."""
        return self._code

    @property
    def can_retry(self) -> bool:
        return self.step == EnrolmentStep.REFUSED and self.refusal in RETRYABLE

    def start(self) -> list[Request]:
        """A person opened enrolment: a clean first step."""
        requests = self.leave()
        self.step = EnrolmentStep.CODE_ENTRY
        return requests

    def key(self, key: str) -> list[Request]:
        """A keypad key on the code screen: a digit, "clear" or "ok"."""
        if self.step != EnrolmentStep.CODE_ENTRY:
            return []
        if key == "ok":
            if len(self._code) != CODE_LENGTH:
                return []
            code, self._code = self._code, ""
            self.step = EnrolmentStep.REDEEMING
            return [Redeem(self.generation, code)]
        self._code = edit_digits(self._code, key, CODE_LENGTH)
        return []

    def redeemed(self, generation: int, result: Redeemed) -> list[Request]:
        if generation != self.generation or self.step != EnrolmentStep.REDEEMING:
            # Redeemed for someone who has left: the ticket must not linger.
            return [CancelTicket(result.ticket.ticket)] if result.ticket is not None else []
        if result.ticket is None:
            return self._refuse(result.refusal or CENTRAL_UNREACHABLE, result.retry_after_seconds)
        self._ticket = result.ticket
        # The member's stored tag as a registry code (zh-TW -> zh-Hant); "" if none.
        self.language = match(result.ticket.language) or ""
        self.card_notice = ""
        self.step = EnrolmentStep.TAP_CARD
        return [Record("enrolment.started")]

    def card(self, seen: CardSeen) -> list[Request]:
        """A card was tapped and identified (read once: it may go at once)."""
        if self.step != EnrolmentStep.TAP_CARD or self._ticket is None:
            return []  # not asked for a card: a tap does nothing here (no door opens)
        kind = CARD_KINDS.get(seen.kind)
        if not seen.readable:
            self.card_notice = "unreadable"
            return []
        ref = seen.enrol_ref  # j2 even when the tap matched a legacy j1 card
        if kind is None or ref is None or not re.fullmatch(CREDENTIAL_REF_PATTERN, ref):
            self.card_notice = "unsupported"
            return []
        self._kind = kind
        self.card_notice = ""
        self.step = EnrolmentStep.SENDING
        card = CardIn(ticket=self._ticket.ticket, credential_ref=ref, kind=kind)
        return [Enrol(self.generation, card)]

    def sent(self, generation: int, result: Sent) -> list[Request]:
        if generation != self.generation or self.step != EnrolmentStep.SENDING:
            return []
        if result.card is None:
            return self._refuse(result.refusal or CENTRAL_UNREACHABLE)
        self._ticket = None  # used up by the enrolment
        self.status = result.card.status
        self.step = EnrolmentStep.ENROLLED
        return [Record("enrolment.enrolled", {"card_kind": self._kind})]

    def retry(self) -> list[Request]:
        """After a refusal typing can fix (a mistyped code): enter it again."""
        if not self.can_retry:
            return []
        self.refusal = ""
        self.step = EnrolmentStep.CODE_ENTRY
        return []

    def leave(self) -> list[Request]:
        """Cancel, idle timeout, or done: wipe everything; a ticket still
        held is cancelled at central. Later results of this person's requests
        are dropped (a new generation)."""
        requests: list[Request] = []
        if self._ticket is not None:
            requests.append(CancelTicket(self._ticket.ticket))
        self._code = ""
        self._ticket = None
        self._kind = None
        self.refusal = self.card_notice = self.status = self.language = ""
        self.retry_after_seconds = None
        self.generation += 1
        self.step = EnrolmentStep.DONE
        return requests

    def _refuse(self, code: str, retry_after_seconds: int | None = None) -> list[Request]:
        self.refusal = code
        self.retry_after_seconds = retry_after_seconds
        self.step = EnrolmentStep.REFUSED
        return [Record("enrolment.refused", {"code": code})]
