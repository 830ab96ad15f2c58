"""Payments for certificate issuance: the values and errors of the payment
port (:class:`~kiosk.issuance.ports.PaymentTerminal`), with a simulator.

A payment terminal charges an amount and can void (before printing) or
refund (after) a charge. The issuance flow charges only once the order is
confirmed and voids or refunds whenever the certificate is not handed out,
so nobody pays for a certificate they did not get; the ledger records every
step (amounts and opaque ids only).

Real terminals (the city's cashless provider) implement
:class:`~kiosk.issuance.ports.PaymentTerminal`; :class:`SimulatedTerminal` is for tests and the
demo, with scripted outcomes.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from enum import StrEnum

from kiosk.errors import KioskError


class PaymentError(KioskError):
    """Root of payment errors."""


class PaymentDeclined(PaymentError):
    """The card or wallet was declined; nothing was charged."""


class PaymentUnavailable(PaymentError, ConnectionError):
    """The terminal did not answer; nothing was charged."""


class PaymentState(StrEnum):
    CAPTURED = "captured"
    VOIDED = "voided"
    REFUNDED = "refunded"


@dataclass
class Payment:
    id: str
    amount_yen: int
    order_ref: str
    state: PaymentState = PaymentState.CAPTURED


@dataclass
class SimulatedTerminal:
    """A payment terminal for tests and the demo.

    ``script`` holds the outcomes of the next charges ("ok", "declined",
    "unavailable"); when empty every charge succeeds.
    """

    script: list[str] = field(default_factory=list)
    ledger: list[tuple[str, str, int]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def charge(self, amount_yen: int, order_ref: str) -> Payment:
        if amount_yen < 0:
            raise ValueError("amount must not be negative")
        with self._lock:
            outcome = self.script.pop(0) if self.script else "ok"
            if outcome == "declined":
                self.ledger.append(("declined", order_ref, amount_yen))
                raise PaymentDeclined("the payment was declined")
            if outcome == "unavailable":
                raise PaymentUnavailable("the payment terminal does not answer")
            payment = Payment(f"sim-{next(self._ids):06d}", amount_yen, order_ref)
            self.ledger.append(("captured", payment.id, amount_yen))
            return payment

    def void(self, payment: Payment) -> None:
        self._settle(payment, PaymentState.VOIDED)

    def refund(self, payment: Payment) -> None:
        self._settle(payment, PaymentState.REFUNDED)

    def _settle(self, payment: Payment, state: PaymentState) -> None:
        with self._lock:
            if payment.state is not PaymentState.CAPTURED:
                raise PaymentError(f"payment {payment.id} is already {payment.state.value}")
            payment.state = state
            self.ledger.append((state.value, payment.id, payment.amount_yen))

    def balance(self) -> int:
        """Money kept: captures minus voids and refunds."""
        kept = 0
        for kind, _, amount in self.ledger:
            if kind == "captured":
                kept += amount
            elif kind in ("voided", "refunded"):
                kept -= amount
        return kept
