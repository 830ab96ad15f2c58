"""Bookings in the database and the devices' copy of them.

A booked booking is one :class:`contracts.mqtt.Reservation` (id = the
booking's ``reservation_id``) carrying the credential references of its
member's *active* cards and the hash of its reservation code; writing it goes
through :meth:`ReservationStore.apply` in the booking's own transaction, so
the booking and the versioned delta devices receive commit together.

No double booking of a door: on PostgreSQL the exclusion constraint
``ex_bookings_door_no_overlap`` refuses the second of two racing inserts (it
waits for the first to commit); on SQLite the write transaction is BEGIN
IMMEDIATE, so :func:`insert_booking`'s overlap check and insert run while no
other writer can commit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from central.db.engine import Database, aware, is_retryable, now_utc, utc
from central.db.tables import BOOKINGS_NO_OVERLAP, bookings, member_cards
from central.errors import BookingRefused, DatabaseError, NotFoundError
from central.reservations.rules import REFUSAL_MESSAGES, Booking
from central.reservations.store import ReservationStore
from contracts.mqtt import Reservation, ReservationChange, ReservationDelta

T = TypeVar("T")
WALK_IN = "walk-in"  # the member id the rules see for a booking without a member


@dataclass(frozen=True)
class BookingView:
    """A booking as the services and the API return it (no code, ever)."""

    id: str
    external_id: str | None
    facility: str
    room: str
    door: str
    member_id: str | None
    starts_at: datetime
    ends_at: datetime
    status: str
    source: str
    created_by: str
    reservation_id: str | None
    has_code: bool

    def as_rule_booking(self) -> Booking:
        return Booking(id=self.id, room_id=self.room, member_id=self.member_id or WALK_IN,
                       starts_at=self.starts_at, ends_at=self.ends_at,
                       status="booked" if self.status == "booked" else "cancelled")  # fmt: skip


def view(row: Row[Any]) -> BookingView:
    return BookingView(
        id=row.id, external_id=row.external_id, facility=row.facility, room=row.room,
        door=row.door, member_id=row.member_id, starts_at=aware(row.starts_at),
        ends_at=aware(row.ends_at), status=row.status, source=row.source,
        created_by=row.created_by, reservation_id=row.reservation_id,
        has_code=row.code_hash is not None,
    )  # fmt: skip


def refused(code: str, **values: str | int) -> BookingRefused:
    template = REFUSAL_MESSAGES.get(code, code.replace("_", " "))  # type: ignore[call-overload]
    return BookingRefused(code, str(template).format(**values), values)


def transaction(db: Database, what: str, body: Callable[[Connection], T]) -> T:
    """One write transaction, retried on deadlock, serialisation failure or a
    busy SQLite; any other database failure is a :class:`DatabaseError`."""
    for attempt in range(1, 6):
        try:
            with db.write() as conn:
                return body(conn)
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            if attempt < 5 and is_retryable(exc):
                continue
            raise DatabaseError(f"{what} failed: {str(exc).splitlines()[0]}") from exc
    raise AssertionError("unreachable")


def is_overlap_violation(exc: IntegrityError) -> bool:
    return BOOKINGS_NO_OVERLAP in str(exc.orig) or getattr(exc.orig, "sqlstate", "") == "23P01"


def get(conn: Connection, db: Database, booking_id: str, *, lock: bool = False) -> Row[Any]:
    query = select(bookings).where(bookings.c.id == booking_id)
    if lock and db.lock_clause():
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise NotFoundError(f"no booking {booking_id!r}")
    return row


def door_overlaps(
    conn: Connection, door: str, starts_at: datetime, ends_at: datetime, *, exclude: str = ""
) -> bool:
    """Whether a booked booking of ``door`` other than ``exclude`` overlaps."""
    row = conn.execute(
        select(bookings.c.id).where(
            bookings.c.door == door, bookings.c.status == "booked", bookings.c.id != exclude,
            bookings.c.starts_at < utc(ends_at), bookings.c.ends_at > utc(starts_at),
        ).limit(1)
    ).first()  # fmt: skip
    return row is not None


def insert_booking(conn: Connection, db: Database, values: dict[str, Any]) -> None:
    """Insert a booking row; a booked one that overlaps another booking of its
    door raises ``slot_taken`` (SQLite: checked under the write lock; PostgreSQL:
    the exclusion constraint, also for writers that skip this function)."""
    if values["status"] == "booked" and db.dialect != "postgresql":
        starts, ends = aware(values["starts_at"]), aware(values["ends_at"])
        if door_overlaps(conn, values["door"], starts, ends):
            raise refused("slot_taken")
    try:
        conn.execute(bookings.insert().values(**values))
    except IntegrityError as exc:
        if is_overlap_violation(exc):
            raise refused("slot_taken") from None
        raise


def update_booking(conn: Connection, db: Database, booking_id: str, values: dict[str, Any]) -> None:
    """Change a booking's room, door, times or status under the same guard."""
    if values.get("status", "booked") == "booked" and db.dialect != "postgresql":
        current = get(conn, db, booking_id)
        door = values.get("door", current.door)
        starts = aware(values.get("starts_at", current.starts_at))
        ends = aware(values.get("ends_at", current.ends_at))
        if door_overlaps(conn, door, starts, ends, exclude=booking_id):
            raise refused("slot_taken")
    try:
        conn.execute(update(bookings).where(bookings.c.id == booking_id)
                     .values(**values, updated_at=now_utc()))  # fmt: skip
    except IntegrityError as exc:
        if is_overlap_violation(exc):
            raise refused("slot_taken") from None
        raise


def active_refs(conn: Connection, member_id: str | None) -> list[str]:
    """The credential references of a member's active cards, sorted."""
    if member_id is None:
        return []
    rows = conn.execute(
        select(member_cards.c.credential_ref)
        .where(member_cards.c.member_id == member_id, member_cards.c.status == "active")
        .order_by(member_cards.c.credential_ref)
    )  # fmt: skip
    return list(rows.scalars())


def reservation_of(row: Row[Any], refs: list[str]) -> Reservation:
    return Reservation(
        id=row.reservation_id or row.id, facility=row.facility, door=row.door,
        starts_at=aware(row.starts_at), ends_at=aware(row.ends_at), credential_refs=refs,
        code_hash=row.code_hash, status="active" if row.status == "booked" else "cancelled",
    )  # fmt: skip


def publish(
    conn: Connection, store: ReservationStore, rows: Iterable[Row[Any]]
) -> list[ReservationDelta]:
    """The devices' copy of these bookings, one change batch per facility."""
    per_facility: dict[str, list[ReservationChange]] = defaultdict(list)
    refs: dict[str | None, list[str]] = {}
    for row in rows:
        if row.member_id not in refs:
            refs[row.member_id] = active_refs(conn, row.member_id)
        reservation = reservation_of(row, refs[row.member_id])
        op: Literal["upsert", "cancel"] = "upsert" if reservation.status == "active" else "cancel"
        per_facility[row.facility].append(ReservationChange(op=op, reservation=reservation))
    return [store.apply(conn, facility, changes) for facility, changes in per_facility.items()]


def publish_one(
    conn: Connection, db: Database, store: ReservationStore, booking_id: str
) -> BookingView:
    row = get(conn, db, booking_id)
    publish(conn, store, [row])
    return view(row)


def republish_member(
    conn: Connection, store: ReservationStore, member_id: str
) -> list[ReservationDelta]:
    """Every booked booking of the member not over yet, again, with the cards
    the member has now (after an enrolment or a revocation)."""
    rows = conn.execute(
        select(bookings).where(
            bookings.c.member_id == member_id, bookings.c.status == "booked",
            bookings.c.ends_at > now_utc(),
        ).order_by(bookings.c.starts_at)
    ).all()  # fmt: skip
    return publish(conn, store, rows)
