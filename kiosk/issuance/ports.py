"""What the issuance flow's orchestrator needs from the world, as Protocols.

One port per outside party: the card (:class:`CardPort`), central's issuance
service (:class:`CentralPort`), the payment terminal
(:class:`PaymentTerminal`), the printer (:class:`Printer`), the speaker
(:class:`SoundPort`) and the outbox (:class:`EventSink`). The real and
simulated sides are in :mod:`.central`, :mod:`.fake_central`,
:mod:`.payment`, :mod:`.printing` and :mod:`.sound`; :mod:`.wiring` picks
them from the configuration.
"""

from __future__ import annotations

from typing import Any, Protocol

from cardreader.service import AuthOutcome, CardInfo
from contracts.issuance import (
    CatalogueOut,
    ChallengeOut,
    ConfirmIn,
    ConfirmOut,
    OrderIn,
    OrderOut,
    OutcomeIn,
    SessionIn,
    SessionOut,
)
from kiosk.issuance.payment import Payment
from kiosk.issuance.printing import JobState, PrinterState


class CardPort(Protocol):
    """The part of :class:`cardreader.service.CardService` issuance uses."""

    def info(self, reader: str | None = None) -> CardInfo: ...

    def authenticate(
        self, pin: str, challenge: bytes, reader: str | None = None
    ) -> AuthOutcome: ...


class CentralPort(Protocol):
    """Central's issuance service (``contracts.issuance``)."""

    def catalogue(self) -> CatalogueOut: ...

    def challenge(self) -> ChallengeOut: ...

    def open_session(self, body: SessionIn) -> SessionOut: ...

    def close_session(self, session_id: str) -> None: ...

    def create_order(self, body: OrderIn) -> OrderOut: ...

    def confirm(self, order_id: str, body: ConfirmIn) -> ConfirmOut: ...

    def report_outcome(self, order_id: str, body: OutcomeIn) -> OrderOut: ...

    def close(self) -> None: ...


class PaymentTerminal(Protocol):
    def charge(self, amount_yen: int, order_ref: str) -> Payment:
        """Charge; raises PaymentDeclined or PaymentUnavailable (nothing charged)."""

    def void(self, payment: Payment) -> None:
        """Cancel a capture before the goods were handed out."""

    def refund(self, payment: Payment) -> None:
        """Give the money back after a failure once handed over to printing."""


class Printer(Protocol):
    def state(self) -> PrinterState: ...

    def submit(self, pdf: bytes, title: str) -> str:
        """Queue a PDF; returns the job id. Raises PrinterError when it cannot print."""

    def job_state(self, job_id: str) -> JobState: ...

    def cancel(self, job_id: str) -> None:
        """Withdraw a job that cannot finish (the certificate is then refunded)."""


class SoundPort(Protocol):
    def alert(self) -> None:
        """The "take your card" sound (must not block)."""


class EventSink(Protocol):
    def append(self, type: str, data: Any = None) -> Any: ...
