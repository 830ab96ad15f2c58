"""An in-process fake of central's card enrolment service
(``contracts.enrolment``), for unit tests and the touchscreen end-to-end
driver: the same refusals the real one gives, as the typed errors the HTTPS
client raises, and a record of every card it was sent."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from contracts.enrolment import CardIn, CardOut, TicketOut
from kiosk.errors import CentralUnreachable, enrolment_refusal


@dataclass
class FakeEnrolmentCentral:
    # code -> the member's preferred language; a code works once.
    codes: dict[str, str] = field(default_factory=dict)
    # Refuse the next redeem / enrol with this contract code ("" = answer).
    refuse_redeem: str = ""
    refuse_enrol: str = ""
    retry_after_seconds: int | None = None
    unreachable: bool = False
    already_enrolled: set[str] = field(default_factory=set)  # refs this member has
    received: list[CardIn] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    tickets: dict[str, str] = field(default_factory=dict)  # ticket -> code
    closed: bool = False
    # While set and not released, redeem waits (to show the wait screen).
    gate: threading.Event | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def redeem(self, code: str) -> TicketOut:
        if self.gate is not None:
            self.gate.wait(30)
        with self._lock:
            self._fail_if_unreachable()
            if self.refuse_redeem:
                raise enrolment_refusal(self.refuse_redeem, "fake", self.retry_after_seconds)
            if code not in self.codes:
                raise enrolment_refusal("code_invalid", "no such code")
            language = self.codes.pop(code)
            ticket = "tk_" + secrets.token_hex(12)
            self.tickets[ticket] = code
            return TicketOut(
                ticket=ticket,
                expires_at=datetime.now(UTC) + timedelta(minutes=5),
                language=language,
                cards_enrolled=len(self.already_enrolled),
            )

    def enrol(self, card: CardIn) -> CardOut:
        with self._lock:
            self._fail_if_unreachable()
            self.received.append(card)
            if card.ticket not in self.tickets:
                raise enrolment_refusal("ticket_invalid", "unknown ticket")
            if self.refuse_enrol:
                raise enrolment_refusal(self.refuse_enrol, "fake")
            del self.tickets[card.ticket]
            known = card.credential_ref in self.already_enrolled
            status: Literal["enrolled", "already_enrolled"] = (
                "already_enrolled" if known else "enrolled"
            )
            self.already_enrolled.add(card.credential_ref)
            return CardOut(status=status, card_id=f"card-{len(self.received)}")

    def cancel(self, ticket: str) -> None:
        with self._lock:
            self._fail_if_unreachable()
            self.cancelled.append(ticket)
            self.tickets.pop(ticket, None)

    def close(self) -> None:
        self.closed = True

    def _fail_if_unreachable(self) -> None:
        if self.unreachable:
            raise CentralUnreachable("fake: no answer")
