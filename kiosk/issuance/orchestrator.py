"""Runs the issuance flow's slow work off the UI thread and hands results back.

:class:`Orchestrator` does one request at a time on its worker thread
(card read; challenge → card signature → session; order → printer check →
charge → confirm → print → outcome) and posts each result to the flow
through ``post`` (which must run it on the UI loop: ``Clock.schedule_once``
in the app, a direct call in tests). ``handle`` does the same work in the
caller's thread, for tests and tools.

Money rule: nobody is charged for a certificate they did not get. The
printer is checked before charging; a capture is voided when central
refuses or does not answer the confirmation, and refunded (job cancelled)
when printing fails after payment; every such step is an event and is
reported to central as the order's outcome (best effort: the event in the
outbox reaches central over MQTT anyway).
"""

from __future__ import annotations

import base64
import logging
import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cardreader.errors import (
    CardReaderError,
    CardRemovedError,
    CertificateError,
    CertificateExpiredError,
    NoCardError,
    PinBlockedError,
    WrongPinError,
)
from cardreader.identify import CardKind as ReaderCardKind
from contracts.issuance import (
    ConfirmIn,
    ConfirmOut,
    OrderIn,
    OrderItemIn,
    OutcomeIn,
    SessionIn,
    signed_message,
)
from kiosk.errors import CentralError, CentralRefused, CentralUnreachable
from kiosk.issuance.model import (
    Alert,
    CardCheck,
    CardKind,
    CloseSession,
    OpenSession,
    Purchase,
    PurchaseProgress,
    PurchaseResult,
    PurchaseStage,
    PurchaseStatus,
    ReadCard,
    Record,
    Request,
    SessionResult,
    SessionStatus,
)
from kiosk.issuance.payment import Payment, PaymentDeclined, PaymentError
from kiosk.issuance.ports import (
    CardPort,
    CentralPort,
    EventSink,
    PaymentTerminal,
    Printer,
    SoundPort,
)
from kiosk.issuance.printing import JobState, PrinterError, PrinterState
from sync.errors import SyncError

log = logging.getLogger(__name__)


class FlowPort(Protocol):
    """The flow's result methods (called on the UI loop through ``post``)."""

    def card_checked(self, generation: int, check: CardCheck) -> None: ...

    def session_result(self, generation: int, result: SessionResult) -> None: ...

    def purchase_progress(self, generation: int, progress: PurchaseProgress) -> None: ...

    def purchase_done(self, generation: int, result: PurchaseResult) -> None: ...


Post = Callable[[Callable[[], None]], None]


@dataclass
class Ports:
    cards: CardPort
    central: CentralPort
    payment: PaymentTerminal
    printer: Printer
    sound: SoundPort
    events: EventSink


class _PrintFailed(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Orchestrator:
    def __init__(
        self,
        ports: Ports,
        device_id: str,
        post: Post,
        *,
        job_poll_seconds: float = 0.5,
        print_timeout_seconds: float = 180.0,
    ) -> None:
        self.ports = ports
        self.device_id = device_id
        self.post = post
        self.flow: FlowPort | None = None
        self.job_poll_seconds = job_poll_seconds
        self.print_timeout_seconds = print_timeout_seconds
        self._work: queue.Queue[Request | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- threads -----------------------------------------------------------
    def start(self) -> Orchestrator:
        self._thread = threading.Thread(target=self._run, name="issuance", daemon=True)
        self._thread.start()
        return self

    def submit(self, request: Request) -> None:
        """From the flow (UI thread): quick requests now, slow ones queued."""
        if isinstance(request, Alert):
            self.ports.sound.alert()
        elif isinstance(request, Record):
            self.record(request.type, **request.data)
        elif self._thread is None:
            self.handle(request)
        else:
            self._work.put(request)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._work.put(None)
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        while (request := self._work.get()) is not None:
            try:
                self.handle(request)
            except Exception:  # one request failing must not stop the kiosk
                log.exception("issuance request failed", extra={"request": type(request).__name__})

    def _to_flow(self, call: Callable[[FlowPort], None]) -> None:
        flow = self.flow
        if flow is not None:
            self.post(lambda: call(flow))

    # --- the work ------------------------------------------------------------
    def handle(self, request: Request) -> None:
        gen = request.generation
        if isinstance(request, ReadCard):
            check = self.check_card()
            self._to_flow(lambda f: f.card_checked(gen, check))
        elif isinstance(request, OpenSession):
            result = self.open_session(request.pin)
            self._to_flow(lambda f: f.session_result(gen, result))
        elif isinstance(request, CloseSession):
            self.close_session(request.session_id)
        elif isinstance(request, Purchase):
            outcome = self.purchase(request)
            self._to_flow(lambda f: f.purchase_done(gen, outcome))
        else:
            self.submit(request)

    def check_card(self) -> CardCheck:
        """Kind, certificate validity and PIN tries: no PIN, no My Number."""
        try:
            info = self.ports.cards.info()
        except (CardRemovedError, NoCardError):
            return CardCheck(CardKind.REMOVED)
        except CertificateError as exc:
            log.info("card certificate unreadable", extra={"error": type(exc).__name__})
            return CardCheck(CardKind.UNREADABLE)
        except CardReaderError as exc:
            log.warning("card not readable", extra={"error": type(exc).__name__})
            return CardCheck(CardKind.UNREADABLE)
        if info.kind is not ReaderCardKind.MYNUMBER or info.certificate is None:
            return CardCheck(CardKind.OTHER)
        return CardCheck(CardKind.MYNUMBER, info.certificate.expired, info.pin_tries_left)

    def open_session(self, pin: str) -> SessionResult:
        """Challenge from central, signed by the card (PIN verified once), session."""
        try:
            challenge = self.ports.central.challenge()
        except CentralRefused as exc:
            return SessionResult(SessionStatus.REFUSED, code=exc.code, opens_at=exc.opens_at)
        except CentralError:
            return SessionResult(SessionStatus.UNREACHABLE)
        message = signed_message(bytes.fromhex(challenge.challenge), self.device_id)
        try:
            auth = self.ports.cards.authenticate(pin, message)
        except WrongPinError as exc:
            log.info("wrong PIN", extra={"tries_left": exc.tries_left})
            return SessionResult(SessionStatus.WRONG_PIN, tries_left=exc.tries_left)
        except PinBlockedError:
            return SessionResult(SessionStatus.BLOCKED)
        except CertificateExpiredError:
            return SessionResult(SessionStatus.EXPIRED)
        except (CardRemovedError, NoCardError):
            return SessionResult(SessionStatus.CARD_REMOVED)
        except CardReaderError as exc:
            log.warning("card signature failed", extra={"error": type(exc).__name__})
            return SessionResult(SessionStatus.CARD_ERROR)
        finally:
            del pin
        body = SessionIn(
            challenge_id=challenge.challenge_id,
            certificate=auth.result.certificate.hex(),
            signature=auth.result.signature.hex(),
        )
        try:
            session = self.ports.central.open_session(body)
        except CentralRefused as exc:
            return SessionResult(SessionStatus.REFUSED, code=exc.code, opens_at=exc.opens_at)
        except CentralError:
            return SessionResult(SessionStatus.UNREACHABLE)
        log.info("issuance session opened", extra={"kinds": len(session.kinds)})
        return SessionResult(SessionStatus.OPEN, session=session)

    def close_session(self, session_id: str) -> None:
        try:
            self.ports.central.close_session(session_id)
        except CentralError as exc:  # it expires at central anyway
            log.info("session not closed at central", extra={"error": type(exc).__name__})

    def purchase(self, order: Purchase) -> PurchaseResult:
        """Order, printer check, charge, confirm, print; void or refund on failure."""
        facts = {"type": order.kind, "copies": order.copies, "fee_yen": order.fee_yen}
        self._progress(order, PurchaseStage.ORDERING)
        state = self._printer_state()
        if state is not PrinterState.OK:
            self.record("issuance.printer_unavailable", **facts, reason=state.value)
            return PurchaseResult(PurchaseStatus.PRINTER_UNAVAILABLE, reason=state.value)
        body = OrderIn(
            session_id=order.session_id,
            idempotency_key=uuid.uuid4().hex,
            items=[OrderItemIn(kind=order.kind, copies=order.copies, options=order.options)],
        )
        try:
            placed = self.ports.central.create_order(body)
        except CentralRefused as exc:
            self.record("issuance.refused", reason=exc.code)
            return PurchaseResult(PurchaseStatus.REFUSED, reason=exc.code, opens_at=exc.opens_at)
        except CentralError:
            self.record("issuance.central_unreachable", step="order")
            return PurchaseResult(PurchaseStatus.UNREACHABLE)
        if placed.total_fee_yen != order.fee_yen:  # not what the person agreed to pay
            self.record("issuance.refused", reason="fee_mismatch")
            return PurchaseResult(PurchaseStatus.REFUSED, reason="fee_mismatch")
        self._progress(order, PurchaseStage.PAYING)
        payment = self._charge(order, placed.order_id, facts)
        if isinstance(payment, PurchaseResult):
            return payment
        self._progress(order, PurchaseStage.ISSUING)
        try:
            issued = self.ports.central.confirm(
                placed.order_id, ConfirmIn(payment_ref=payment.id if payment else "free")
            )
        except CentralError as exc:
            return self._void(placed.order_id, payment, facts, exc)
        return self._print(order, placed.order_id, issued, payment, facts)

    # --- purchase steps --------------------------------------------------------
    def _charge(
        self, order: Purchase, order_id: str, facts: dict[str, Any]
    ) -> Payment | PurchaseResult | None:
        if order.fee_yen == 0:
            return None
        try:
            return self.ports.payment.charge(order.fee_yen, order_id)
        except PaymentDeclined:
            self.record("issuance.payment_declined", **facts)
            return PurchaseResult(PurchaseStatus.DECLINED)
        except (PaymentError, ConnectionError) as exc:
            self.record("issuance.payment_unavailable", **facts)
            log.warning("payment terminal failed", extra={"error": type(exc).__name__})
            return PurchaseResult(PurchaseStatus.PAYMENT_UNAVAILABLE)

    def _void(
        self, order_id: str, payment: Payment | None, facts: dict[str, Any], exc: CentralError
    ) -> PurchaseResult:
        reason = exc.code if isinstance(exc, CentralRefused) else "central_unreachable"
        returned = self._return_money(payment, "void", facts, reason)
        self._report(order_id, "voided", reason)
        if isinstance(exc, CentralUnreachable):
            self.record("issuance.central_unreachable", step="confirm")
            return PurchaseResult(PurchaseStatus.UNREACHABLE, money_returned=returned is True,
                                  settlement_failed=returned is False)  # fmt: skip
        self.record("issuance.refused", reason=reason)
        return PurchaseResult(
            PurchaseStatus.REFUSED, reason=reason, opens_at=exc.opens_at,  # type: ignore[attr-defined]
            money_returned=returned is True, settlement_failed=returned is False,
        )  # fmt: skip

    def _return_money(
        self, payment: Payment | None, how: str, facts: dict[str, Any], reason: str
    ) -> bool | None:
        """Void or refund a capture: True when done, None when nothing was
        charged, False when the terminal refused -- recorded for staff
        (``issuance.settlement_failed``) and shown to the resident."""
        if payment is None:
            return None
        try:
            if how == "void":
                self.ports.payment.void(payment)
            else:
                self.ports.payment.refund(payment)
        except (PaymentError, ConnectionError) as exc:
            log.error("payment not returned", extra={"action": how, "error": type(exc).__name__})
            self.record("issuance.settlement_failed", **facts, reason=reason, action=how)
            return False
        self.record("issuance.voided" if how == "void" else "issuance.refunded", **facts,
                    reason=reason)  # fmt: skip
        return True

    def _print(
        self,
        order: Purchase,
        order_id: str,
        issued: ConfirmOut,
        payment: Payment | None,
        facts: dict[str, Any],
    ) -> PurchaseResult:
        jobs: list[str] = []
        total = max(1, len(issued.documents))
        self._progress(order, PurchaseStage.PRINTING, 0.0)
        try:
            for index, document in enumerate(issued.documents):
                pdf = base64.b64decode(document.pdf, validate=True)
                jobs.append(
                    self.ports.printer.submit(pdf, f"{document.kind} {document.copy_index}")
                )
                self._wait_printed(jobs[-1])
                self._progress(order, PurchaseStage.PRINTING, (index + 1) / total)
        except (_PrintFailed, PrinterError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, _PrintFailed) else _printer_reason(exc)
            return self._refund(order_id, jobs, payment, facts, reason)
        self._report(order_id, "printed", "")
        self.record("issuance.issued", **facts)
        return PurchaseResult(PurchaseStatus.PRINTED)

    def _wait_printed(self, job: str) -> None:
        waited = 0.0
        while True:
            state = self.ports.printer.job_state(job)
            if state is JobState.DONE:
                return
            if state is JobState.FAILED:
                raise _PrintFailed(self._printer_state().value)
            # A printer that stops with our job held (paper out, jam) will not
            # finish it while the resident waits: withdraw it and refund.
            printer = self._printer_state()
            if printer is not PrinterState.OK:
                raise _PrintFailed(printer.value)
            if waited >= self.print_timeout_seconds:
                raise _PrintFailed("timeout")
            if self._stop.wait(self.job_poll_seconds):
                raise _PrintFailed("shutdown")
            waited += self.job_poll_seconds

    def _refund(
        self,
        order_id: str,
        jobs: list[str],
        payment: Payment | None,
        facts: dict[str, Any],
        reason: str,
    ) -> PurchaseResult:
        for job in jobs:
            try:
                self.ports.printer.cancel(job)
            except PrinterError as exc:
                log.warning("print job not cancelled", extra={"job": job, "error": str(exc)})
        self.record("issuance.print_failed", **facts, reason=reason)
        returned = self._return_money(payment, "refund", facts, reason)
        self._report(order_id, "refunded" if returned else "failed", reason)
        return PurchaseResult(PurchaseStatus.PRINT_FAILED, reason=reason,
                              money_returned=returned is True,
                              settlement_failed=returned is False)  # fmt: skip

    def _printer_state(self) -> PrinterState:
        try:
            return self.ports.printer.state()
        except PrinterError as exc:
            return exc.state

    def _report(self, order_id: str, status: str, reason: str) -> None:
        try:
            self.ports.central.report_outcome(
                order_id,
                OutcomeIn(status=status, reason=reason),  # type: ignore[arg-type]
            )
        except CentralError as exc:
            log.warning(
                "order outcome not reported",
                extra={"status": status, "error": type(exc).__name__},
            )

    def _progress(self, order: Purchase, stage: PurchaseStage, fraction: float = 0.0) -> None:
        progress = PurchaseProgress(stage, fraction)
        self._to_flow(lambda f: f.purchase_progress(order.generation, progress))

    def record(self, type_: str, **data: Any) -> None:
        """An ``issuance.*`` event (the outbox checks it holds no personal data).

        A store that cannot take it (a full disk) is logged, never raised: the
        resident's purchase goes on, and the log line is the event's trace."""
        try:
            self.ports.events.append(type_, data)
        except SyncError as exc:
            log.error("event not recorded", extra={"event_type": type_, "error": str(exc)})
            return
        log.info("issuance event", extra={"event": type_, **data})


def _printer_reason(exc: Exception) -> str:
    return exc.state.value if isinstance(exc, PrinterError) else "bad_document"
