"""The booking service: create, cancel and move bookings, list availability
and a member's bookings.

Each decision runs the pure rules (:func:`rules.check_booking`,
:func:`rules.check_cancellation`) on what the database holds, inside the
write transaction that then stores the change: the member's row is locked
(PostgreSQL) so a member's limits hold under concurrent requests, and the
door's no-overlap guard of :mod:`central.reservations.booking_rows` is the
last word on a double booking. Every change writes the devices' copy (one
versioned change batch) and an audit entry in the same transaction.

A new booking gets a 6-digit reservation code (the keypad length of the door
devices); only its keyed hash is stored, the code is returned once.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from sqlalchemy import or_, select
from sqlalchemy.engine import Connection

from central.db.engine import Database, now_utc, utc
from central.db.tables import bookings, members
from central.errors import NotFoundError
from central.reservations import audit
from central.reservations import booking_rows as rows
from central.reservations.booking_rows import BookingView, refused
from central.reservations.places import Places
from central.reservations.rules import (
    BookingRequest,
    MemberState,
    Refusal,
    Room,
    Slot,
    check_booking,
    check_cancellation,
    free_slots,
)
from central.reservations.store import ReservationStore
from contracts.reservations_hash import code_hash

CODE_DIGITS = 6
Source = Literal["site", "staff", "import"]
Clock = Callable[[], datetime]
# How far back a member's bookings still count for the weekly hours limit.
LIMIT_LOOKBACK = timedelta(days=8)


@dataclass(frozen=True)
class NewBooking:
    """A committed booking and its reservation code (shown once)."""

    booking: BookingView
    code: str


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


class BookingService:
    def __init__(
        self, db: Database, store: ReservationStore, code_key: Callable[[str], bytes],
        now: Clock = utc_now,
    ) -> None:  # fmt: skip
        self.db = db
        self.store = store
        self.places = Places(db)
        self.code_key = code_key
        self.now = now

    # changes ----------------------------------------------------------------

    def create(
        self, room_id: str, starts_at: datetime, ends_at: datetime, *,
        member_id: str | None, actor: str, source: Source = "staff",
    ) -> NewBooking:  # fmt: skip
        """Book ``room_id`` for a member (None: a walk-in at the desk)."""
        booking_id, code = uuid.uuid4().hex, new_code()

        def body(conn: Connection) -> BookingView:
            room = self.places.room(room_id, conn)
            self._check(conn, room, starts_at, ends_at, member_id, exclude="")
            now = now_utc()
            rows.insert_booking(conn, self.db, {
                "id": booking_id, "external_id": None, "facility": room.facility_id,
                "room": room.id, "door": room.door_id, "member_id": member_id,
                "starts_at": utc(starts_at), "ends_at": utc(ends_at), "status": "booked",
                "code_hash": code_hash(self.code_key(room.facility_id), room.facility_id, code),
                "source": source, "created_by": actor, "reservation_id": booking_id,
                "created_at": now, "updated_at": now,
            })  # fmt: skip
            audit.record(conn, actor, "booking.created", f"booking:{booking_id}",
                         room=room.id, member=member_id, starts_at=starts_at.isoformat(),
                         ends_at=ends_at.isoformat(), source=source)  # fmt: skip
            return rows.publish_one(conn, self.db, self.store, booking_id)

        return NewBooking(rows.transaction(self.db, "booking", body), code)

    def cancel(
        self, booking_id: str, *, actor: str, enforce_deadline: bool = True, reason: str = ""
    ) -> BookingView:
        """Cancel a booking; ``enforce_deadline`` False lets staff cancel after
        the member's deadline (a cancelled booking stays refused); ``reason``
        (staff's words, kept in the audit entry) says why."""

        def body(conn: Connection) -> BookingView:
            row = rows.get(conn, self.db, booking_id, lock=True)
            room = self.places.room(row.room, conn)
            verdict = check_cancellation(rows.view(row).as_rule_booking(), room.rules, self.now())
            if isinstance(verdict, Refusal) and (
                enforce_deadline or verdict.code == "already_cancelled"
            ):
                raise refused(verdict.code, **verdict.values)
            rows.update_booking(conn, self.db, booking_id, {"status": "cancelled"})
            extra = {"reason": reason[:200]} if reason else {}
            audit.record(conn, actor, "booking.cancelled", f"booking:{booking_id}",
                         late=isinstance(verdict, Refusal), **extra)  # fmt: skip
            return rows.publish_one(conn, self.db, self.store, booking_id)

        return rows.transaction(self.db, "cancelling a booking", body)

    def move(
        self, booking_id: str, starts_at: datetime, ends_at: datetime, *,
        actor: str, room_id: str | None = None,
    ) -> BookingView:  # fmt: skip
        """Staff move a booking to other times (and optionally another room of
        the same facility); the rules apply as to a new booking."""

        def body(conn: Connection) -> BookingView:
            row = rows.get(conn, self.db, booking_id, lock=True)
            if row.status != "booked":
                raise refused("already_cancelled")
            room = self.places.room(room_id or row.room, conn)
            if room.facility_id != row.facility:
                raise refused("other_facility", facility=row.facility)
            self._check(conn, room, starts_at, ends_at, row.member_id, exclude=booking_id)
            rows.update_booking(conn, self.db, booking_id, {
                "room": room.id, "door": room.door_id, "starts_at": utc(starts_at),
                "ends_at": utc(ends_at)})  # fmt: skip
            audit.record(conn, actor, "booking.moved", f"booking:{booking_id}", room=room.id,
                         starts_at=starts_at.isoformat(), ends_at=ends_at.isoformat(),
                         was={"room": row.room, "starts_at": row.starts_at.isoformat() + "Z",
                              "ends_at": row.ends_at.isoformat() + "Z"})  # fmt: skip
            return rows.publish_one(conn, self.db, self.store, booking_id)

        return rows.transaction(self.db, "moving a booking", body)

    def _check(
        self, conn: Connection, room: Room, starts_at: datetime, ends_at: datetime,
        member_id: str | None, *, exclude: str,
    ) -> None:  # fmt: skip
        """Refuse (:class:`BookingRefused`) what the rules refuse."""
        if ends_at <= starts_at:
            raise refused("end_not_after_start")
        now = self.now()
        member = self._member_state(conn, member_id)
        mine = self._member_bookings(conn, member_id, min(now, starts_at) - LIMIT_LOOKBACK)
        others = [b for b in self._room_bookings(conn, room, starts_at, ends_at)
                  if b.id != exclude and b.member_id != member_id]  # fmt: skip
        context = self.places.context(conn, room.facility_id, starts_at, ends_at)
        request = BookingRequest(room_id=room.id, member_id=member.member_id,
                                 starts_at=starts_at, ends_at=ends_at)  # fmt: skip
        verdict = check_booking(
            request, room, context, member=member, now=now,
            member_bookings=[b.as_rule_booking() for b in mine if b.id != exclude],
            room_bookings=[b.as_rule_booking() for b in others],
        )  # fmt: skip
        if isinstance(verdict, Refusal):
            raise refused(verdict.code, **verdict.values)

    def _member_state(self, conn: Connection, member_id: str | None) -> MemberState:
        if member_id is None:
            return MemberState(member_id=rows.WALK_IN, status="active")
        query = select(members.c.status).where(members.c.id == member_id)
        if self.db.lock_clause():
            query = query.with_for_update()  # one decision per member at a time
        status = conn.execute(query).scalar()
        if status is None:
            raise refused("unknown_member")
        return MemberState(member_id=member_id, status=status)

    def _member_bookings(
        self, conn: Connection, member_id: str | None, since: datetime
    ) -> list[BookingView]:
        if member_id is None:
            return []  # a walk-in has no limits to count
        found = conn.execute(select(bookings).where(
            bookings.c.member_id == member_id, bookings.c.status == "booked",
            or_(bookings.c.ends_at > utc(since), bookings.c.starts_at >= utc(since))))  # fmt: skip
        return [rows.view(r) for r in found]

    def _room_bookings(
        self, conn: Connection, room: Room, starts_at: datetime, ends_at: datetime
    ) -> list[BookingView]:
        found = conn.execute(select(bookings).where(
            bookings.c.room == room.id, bookings.c.status == "booked",
            bookings.c.starts_at < utc(ends_at), bookings.c.ends_at > utc(starts_at)))  # fmt: skip
        return [rows.view(r) for r in found]

    # reads ------------------------------------------------------------------

    def get(self, booking_id: str) -> BookingView:
        with self.db.read() as conn:
            return rows.view(rows.get(conn, self.db, booking_id))

    def availability(self, room_id: str, day: date) -> list[Slot]:
        """The free slots of a room on a local calendar day."""
        with self.db.read() as conn:
            room = self.places.room(room_id, conn)
            facility = self.places.facility(room.facility_id, conn)
            start = datetime.combine(day, datetime.min.time(), facility.zone) - timedelta(days=1)
            end = start + timedelta(days=3)  # the local day, whatever the offset
            context = self.places.context(conn, room.facility_id, start, end)
            taken = [b.as_rule_booking() for b in self._room_bookings(conn, room, start, end)]
        return free_slots(room, context, day, taken, self.now())

    def member_bookings(self, member_id: str, *, upcoming: bool = True) -> list[BookingView]:
        """A member's bookings (``upcoming``: booked and not over yet)."""
        query = select(bookings).where(bookings.c.member_id == member_id)
        if upcoming:
            query = query.where(bookings.c.status == "booked",
                                bookings.c.ends_at > utc(self.now()))  # fmt: skip
        with self.db.read() as conn:
            if conn.execute(select(members.c.id).where(members.c.id == member_id)).first() is None:
                raise NotFoundError(f"no member {member_id!r}")
            return [rows.view(r) for r in conn.execute(query.order_by(bookings.c.starts_at))]

    def list_bookings(
        self, *, facility: str | None = None, room: str | None = None,
        day: date | None = None, status: str | None = None, limit: int = 500,
    ) -> list[BookingView]:  # fmt: skip
        """Bookings by facility, room and local day (the facility's zone)."""
        query = select(bookings)
        for column, value in (("facility", facility), ("room", room), ("status", status)):
            if value:
                query = query.where(bookings.c[column] == value)
        with self.db.read() as conn:
            if day is not None:
                zone_of = facility or (self.places.room(room, conn).facility_id if room else None)
                if zone_of is None:
                    raise refused("day_needs_facility")
                zone = self.places.facility(zone_of, conn).zone
                start = datetime.combine(day, datetime.min.time(), zone)
                query = query.where(bookings.c.starts_at < utc(start + timedelta(days=1)),
                                    bookings.c.ends_at > utc(start))  # fmt: skip
            found = conn.execute(query.order_by(bookings.c.starts_at, bookings.c.id).limit(limit))
            return [rows.view(r) for r in found]
