"""Storing what :mod:`central.reservations.imports` parsed from an existing
booking system's CSV: members keyed by ``external_number``, reservations by
``external_id``.

Each row is applied in a transaction of its own, so a bad row is reported
(with its line) and the good rows are applied, and no row is ever half
applied. Importing the same file again changes nothing. Imported
reservations skip the booking rules (the old system granted them) but not the
door's no-overlap guard: an overlapping row is refused with ``slot_taken``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from central.db.engine import Database, aware, now_utc, utc
from central.db.tables import bookings, members
from central.errors import BookingRefused, NotFoundError
from central.reservations import audit
from central.reservations import booking_rows as rows
from central.reservations.imports import (
    ImportedMember,
    ImportedReservation,
    RowError,
    decode_csv,
    parse_members_csv,
    parse_reservations_csv,
)
from central.reservations.members import MemberIn, uuid_hex
from central.reservations.places import Places
from central.reservations.rules import Room
from central.reservations.store import ReservationStore


@dataclass(frozen=True)
class StoreError:
    """A good row refused when stored: ``unknown_room``, ``unknown_member``,
    ``email_taken``, ``slot_taken`` or ``bad_value``."""

    line: int
    code: str
    message: str
    column: str | None = None


@dataclass
class ImportReport:
    """What an import did; ``errors`` are the parser's and the store's, by line."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError | StoreError] = field(default_factory=list)

    def count(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)


class Importer:
    def __init__(self, db: Database, store: ReservationStore, *, timezone: str = "Asia/Tokyo"):
        self.db = db
        self.store = store
        self.places = Places(db)
        self.timezone = timezone

    def members_csv(self, data: bytes | str, actor: str) -> ImportReport:
        text = decode_csv(data) if isinstance(data, bytes) else data
        parsed, errors = parse_members_csv(text)
        report = ImportReport(errors=list(errors))
        for row in parsed:
            self._apply(report, row.line, lambda conn, r=row: self._member(conn, r, actor))
        report.errors.sort(key=lambda e: e.line)
        return report

    def reservations_csv(self, data: bytes | str, actor: str) -> ImportReport:
        text = decode_csv(data) if isinstance(data, bytes) else data
        parsed, errors = parse_reservations_csv(text, timezone_name=self.timezone)
        report = ImportReport(errors=list(errors))
        for row in parsed:
            self._apply(report, row.line, lambda conn, r=row: self._reservation(conn, r, actor))
        report.errors.sort(key=lambda e: e.line)
        return report

    def _apply(self, report: ImportReport, line: int, body: Any) -> None:
        try:
            report.count(rows.transaction(self.db, "importing a row", body))
        except BookingRefused as exc:
            report.errors.append(StoreError(line, exc.code, exc.message))
        except IntegrityError:
            # Only a concurrent change of the same member gets here.
            report.errors.append(StoreError(line, "email_taken", "conflicts with a stored member"))

    def _member(self, conn: Connection, row: ImportedMember, actor: str) -> str:
        try:
            values = MemberIn(display_name=row.display_name, email=row.email,
                              language=row.language, external_number=row.external_number,
                              status=row.status).model_dump()  # fmt: skip
        except ValidationError as exc:
            raise BookingRefused("bad_value", f"invalid member: {exc.errors()[0]['msg']}") from None
        current = conn.execute(
            select(members).where(members.c.external_number == row.external_number)
        ).first()
        taken = conn.execute(select(members.c.id).where(
            members.c.email == values["email"],
            members.c.external_number.is_distinct_from(row.external_number))).first()  # fmt: skip
        if taken is not None:
            raise BookingRefused("email_taken", "another member has this e-mail address")
        now = now_utc()
        if current is None:
            member_id = uuid_hex()
            conn.execute(members.insert().values(id=member_id, created_at=now, updated_at=now,
                                                 **values))  # fmt: skip
            audit.record(conn, actor, "member.imported", f"member:{member_id}")
            return "created"
        if all(getattr(current, k) == v for k, v in values.items()):
            return "unchanged"
        conn.execute(update(members).where(members.c.id == current.id)
                     .values(**values, updated_at=now))  # fmt: skip
        audit.record(conn, actor, "member.imported", f"member:{current.id}", updated=True)
        return "updated"

    def _reservation(self, conn: Connection, row: ImportedReservation, actor: str) -> str:
        room = self._room(conn, row.room_id)
        member_id = conn.execute(select(members.c.id).where(
            members.c.external_number == row.member_number)).scalar()  # fmt: skip
        if member_id is None:
            raise BookingRefused("unknown_member", f"no member with number {row.member_number!r}")
        values: dict[str, Any] = {
            "facility": room.facility_id, "room": room.id, "door": room.door_id,
            "member_id": member_id, "starts_at": utc(row.starts_at), "ends_at": utc(row.ends_at),
            "status": row.status,
        }  # fmt: skip
        current = conn.execute(
            select(bookings).where(bookings.c.external_id == row.external_id)
        ).first()
        if current is None:
            booking_id, now = uuid_hex(), now_utc()
            rows.insert_booking(conn, self.db, {
                **values, "id": booking_id, "external_id": row.external_id, "code_hash": None,
                "source": "import", "created_by": actor, "reservation_id": booking_id,
                "created_at": now, "updated_at": now})  # fmt: skip
            outcome = "created"
        elif _same(current, values):
            return "unchanged"
        else:
            booking_id, outcome = current.id, "updated"
            rows.update_booking(conn, self.db, booking_id, values)
        audit.record(conn, actor, "booking.imported", f"booking:{booking_id}",
                     external_id=row.external_id, status=row.status, outcome=outcome)  # fmt: skip
        if row.status == "booked" or current is not None:
            rows.publish_one(conn, self.db, self.store, booking_id)
        return outcome

    def _room(self, conn: Connection, room_id: str) -> Room:
        try:
            return self.places.room(room_id, conn)
        except NotFoundError:
            raise BookingRefused("unknown_room", f"no room {room_id!r}") from None


def _same(current: Any, values: dict[str, Any]) -> bool:
    return all(
        (aware(getattr(current, k)) == aware(v)) if k.endswith("_at") else getattr(current, k) == v
        for k, v in values.items()
    )
