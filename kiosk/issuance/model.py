"""What the issuance flow asks for and what comes back: plain values.

The flow (:mod:`kiosk.issuance.flow`) never does I/O. It hands *requests* to
its runner (the orchestrator, on a worker thread) and receives *results*
through its methods on the UI thread. Every request carries the flow's
``generation``: a result from a previous person's session (after a reset)
is recognised and dropped, and a session it opened is closed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from contracts.issuance import SessionOut


# --- requests (flow -> orchestrator) ---------------------------------------
@dataclass(frozen=True)
class ReadCard:
    generation: int


@dataclass(frozen=True)
class OpenSession:
    generation: int
    pin: str = field(repr=False)  # never printed, never logged


@dataclass(frozen=True)
class CloseSession:
    generation: int
    session_id: str


@dataclass(frozen=True)
class Purchase:
    generation: int
    session_id: str
    kind: str
    copies: int
    options: dict[str, str]
    fee_yen: int  # the total the person confirmed


@dataclass(frozen=True)
class Alert:
    """Play the "take your card" sound."""

    generation: int


@dataclass(frozen=True)
class Record:
    """An ``issuance.*`` event for the outbox (type, copies, fee, reasons only)."""

    generation: int
    type: str
    data: dict[str, Any]


Request = ReadCard | OpenSession | CloseSession | Purchase | Alert | Record


# --- results (orchestrator -> flow) ----------------------------------------
class CardKind(StrEnum):
    MYNUMBER = "mynumber"
    OTHER = "other"  # a readable card that is not a My Number Card
    UNREADABLE = "unreadable"
    REMOVED = "removed"


@dataclass(frozen=True)
class CardCheck:
    """What was read before anything else: kind, certificate validity, tries."""

    kind: CardKind
    expired: bool = False
    tries_left: int | None = None


class SessionStatus(StrEnum):
    OPEN = "open"
    WRONG_PIN = "wrong_pin"
    BLOCKED = "blocked"
    EXPIRED = "expired"
    REFUSED = "refused"  # central's error code in ``code``
    UNREACHABLE = "unreachable"
    CARD_REMOVED = "card_removed"
    CARD_ERROR = "card_error"


@dataclass(frozen=True)
class SessionResult:
    status: SessionStatus
    session: SessionOut | None = None
    tries_left: int | None = None
    code: str = ""
    opens_at: datetime | None = None


class PurchaseStage(StrEnum):
    ORDERING = "ordering"
    PAYING = "paying"
    ISSUING = "issuing"
    PRINTING = "printing"


@dataclass(frozen=True)
class PurchaseProgress:
    stage: PurchaseStage
    fraction: float = 0.0  # printing: share of the documents done


class PurchaseStatus(StrEnum):
    PRINTED = "printed"
    PRINTER_UNAVAILABLE = "printer_unavailable"  # before charging: nothing paid
    DECLINED = "declined"  # nothing paid
    PAYMENT_UNAVAILABLE = "payment_unavailable"  # nothing paid
    REFUSED = "refused"  # central refused the order or its confirmation; voided
    UNREACHABLE = "unreachable"  # central did not answer; voided
    PRINT_FAILED = "print_failed"  # printing failed after payment; refunded


@dataclass(frozen=True)
class PurchaseResult:
    status: PurchaseStatus
    reason: str = ""  # printer state, central's code...
    opens_at: datetime | None = None
    money_returned: bool = False  # a capture was voided or refunded
    settlement_failed: bool = False  # the terminal refused the void or refund
