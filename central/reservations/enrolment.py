"""Central's side of card enrolment at a device (:mod:`contracts.enrolment`):
redeem a one-time code for a ticket bound to the device, link a card to the
ticket's member, close the ticket.

Any registered device may enrol (door devices as well as counters): the
device id is the verified client certificate's CN and must be in the device
registry. Wrong codes are counted per device; ``max_failures`` within
``failure_window`` refuse the device with ``too_many_attempts`` until the
oldest of them leaves the window. A ticket stays usable until it expires or
the device closes it, so one visit can enrol a member card and a My Number
Card.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from central.db.engine import Database, aware, utc
from central.db.tables import (
    devices,
    enrolment_codes,
    enrolment_failures,
    enrolment_tickets,
    member_cards,
)
from central.errors import EnrolmentRefused
from central.reservations import audit
from central.reservations import booking_rows as rows
from central.reservations.members import enrolment_code_hash, get_member, uuid_hex
from central.reservations.store import ReservationStore
from contracts.enrolment import CardIn, CardOut, TicketOut

log = logging.getLogger(__name__)
MAX_ACTIVE_CARDS = 5
Clock = Callable[[], datetime]


def ticket_hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


class EnrolmentService:
    def __init__(
        self, db: Database, store: ReservationStore, enrolment_key: bytes, *,
        now: Clock = lambda: datetime.now(UTC), ticket_seconds: int = 300,
        max_failures: int = 5, failure_window: timedelta = timedelta(minutes=15),
    ) -> None:  # fmt: skip
        self.db = db
        self.store = store
        self.key = enrolment_key
        self.now = now
        self.ticket_seconds = ticket_seconds
        self.max_failures = max_failures
        self.failure_window = failure_window

    def check_device(self, device: str | None) -> str:
        """The client certificate's CN, if it is a registered device."""
        if device:
            with self.db.read() as conn:
                if conn.execute(select(devices.c.id).where(devices.c.id == device)).first():
                    return device
        log.warning("enrolment device refused", extra={"device": device or ""})
        raise EnrolmentRefused("device_unknown", "this device is not registered")

    def redeem(self, device: str, code: str) -> TicketOut:
        """The code -> a ticket for this device; the code is used up."""
        moment = self.now()
        self._refuse_if_locked_out(device, moment)
        outcome = rows.transaction(
            self.db,
            "redeeming an enrolment code",
            lambda conn: self._redeem(conn, device, code, moment),
        )
        if isinstance(outcome, EnrolmentRefused):
            raise outcome  # raised after the commit, so the attempt stays counted
        return outcome

    def _redeem(
        self, conn: Connection, device: str, code: str, moment: datetime
    ) -> TicketOut | EnrolmentRefused:
        row = conn.execute(
            select(enrolment_codes)
            .where(enrolment_codes.c.code_hash == enrolment_code_hash(self.key, code))
            .order_by(enrolment_codes.c.created_at.desc()).limit(1)
        ).first()  # fmt: skip
        if row is None:
            conn.execute(enrolment_failures.insert().values(device=device, at=utc(moment)))
            return EnrolmentRefused("code_invalid", "no such enrolment code")
        conn.execute(update(enrolment_codes).where(enrolment_codes.c.id == row.id)
                     .values(attempts=enrolment_codes.c.attempts + 1))  # fmt: skip
        if row.used_at is not None:
            return EnrolmentRefused("code_used", "this enrolment code was already used")
        if aware(row.expires_at) <= moment:
            return EnrolmentRefused("code_expired", "this enrolment code has expired")
        member = get_member(conn, row.member_id)
        if member.status != "active":
            return EnrolmentRefused("member_suspended", "the membership is suspended")
        conn.execute(update(enrolment_codes).where(enrolment_codes.c.id == row.id)
                     .values(used_at=utc(moment), used_by=f"device:{device}"))  # fmt: skip
        ticket = secrets.token_urlsafe(32)
        expires = moment + timedelta(seconds=self.ticket_seconds)
        conn.execute(enrolment_tickets.insert().values(
            ticket_hash=ticket_hash(ticket), member_id=member.id, device=device,
            code_id=row.id, created_at=utc(moment), expires_at=utc(expires)))  # fmt: skip
        audit.record(conn, f"device:{device}", "enrolment_code.redeemed", f"member:{member.id}",
                     code_id=row.id)  # fmt: skip
        return TicketOut(ticket=ticket, expires_at=expires, language=member.language,
                         cards_enrolled=self._active_cards(conn, member.id))  # fmt: skip

    def _refuse_if_locked_out(self, device: str, moment: datetime) -> None:
        since = utc(moment - self.failure_window)
        with self.db.write() as conn:
            conn.execute(delete(enrolment_failures).where(enrolment_failures.c.at < since))
            count, oldest = conn.execute(
                select(func.count(), func.min(enrolment_failures.c.at))
                .where(enrolment_failures.c.device == device, enrolment_failures.c.at >= since)
            ).one()  # fmt: skip
        if count >= self.max_failures:
            wait = aware(oldest) + self.failure_window - moment
            raise EnrolmentRefused("too_many_attempts", "too many wrong codes from this device",
                                   retry_after=max(1, int(wait.total_seconds()) + 1))  # fmt: skip

    def enrol(self, device: str, card: CardIn) -> CardOut:
        """Link the card to the ticket's member; committed before answering."""
        moment = self.now()
        try:
            return rows.transaction(
                self.db, "enrolling a card", lambda conn: self._enrol(conn, device, card, moment)
            )
        except IntegrityError:
            # Another member's enrolment of the same card won the race.
            raise EnrolmentRefused(
                "card_bound_elsewhere", "the card is enrolled to another member"
            ) from None

    def _enrol(self, conn: Connection, device: str, card: CardIn, moment: datetime) -> CardOut:
        ticket = self._ticket(conn, device, card.ticket, moment)
        member = get_member(conn, ticket.member_id, lock=True)
        if member.status != "active":
            raise EnrolmentRefused("member_suspended", "the membership is suspended")
        bound = conn.execute(select(member_cards).where(
            member_cards.c.credential_ref == card.credential_ref,
            member_cards.c.status == "active")).first()  # fmt: skip
        if bound is not None and bound.member_id == member.id:
            return CardOut(status="already_enrolled", card_id=bound.id)
        if bound is not None:
            raise EnrolmentRefused("card_bound_elsewhere", "the card is enrolled to another member")
        if self._active_cards(conn, member.id) >= MAX_ACTIVE_CARDS:
            raise EnrolmentRefused("card_limit", f"at most {MAX_ACTIVE_CARDS} active cards")
        card_id = uuid_hex()
        conn.execute(member_cards.insert().values(
            id=card_id, member_id=member.id, credential_ref=card.credential_ref, kind=card.kind,
            label=card.label, status="active", enrolled_at=utc(moment),
            enrolled_by=f"device:{device}"))  # fmt: skip
        deltas = rows.republish_member(conn, self.store, member.id)
        audit.record(conn, f"device:{device}", "card.enrolled", f"card:{card_id}",
                     member=member.id, kind=card.kind,
                     republished=sum(len(d.changes) for d in deltas))  # fmt: skip
        return CardOut(status="enrolled", card_id=card_id)

    def close(self, device: str, ticket: str) -> None:
        """The person left: the ticket stops working (idempotent)."""
        moment = self.now()

        def body(conn: Connection) -> None:
            row = self._ticket(conn, device, ticket, moment, allow_closed=True)
            if row.closed_at is None:
                conn.execute(update(enrolment_tickets)
                             .where(enrolment_tickets.c.ticket_hash == row.ticket_hash)
                             .values(closed_at=utc(moment)))  # fmt: skip

        rows.transaction(self.db, "closing an enrolment ticket", body)

    def _ticket(
        self, conn: Connection, device: str, ticket: str, moment: datetime, *,
        allow_closed: bool = False,
    ) -> Row[Any]:  # fmt: skip
        row = conn.execute(select(enrolment_tickets).where(
            enrolment_tickets.c.ticket_hash == ticket_hash(ticket))).first()  # fmt: skip
        usable = (
            row is not None and row.device == device
            and (allow_closed or (row.closed_at is None and aware(row.expires_at) > moment))
        )  # fmt: skip
        if row is None or not usable:
            raise EnrolmentRefused("ticket_invalid", "unknown, expired or another device's ticket")
        return row

    def _active_cards(self, conn: Connection, member_id: str) -> int:
        return int(conn.execute(select(func.count()).select_from(member_cards).where(
            member_cards.c.member_id == member_id, member_cards.c.status == "active")
        ).scalar_one())  # fmt: skip
