"""Facilities' booking settings, rooms and closures in the database, as the
pure models of :mod:`central.reservations.rules` (which validate them: a
room's rules JSON is a :class:`~central.reservations.rules.BookingRules`)."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.engine import Connection, Row

from central.db.engine import Database, aware, now_utc, utc
from central.db.tables import closures, facility_settings, rooms
from central.errors import ConflictError, NotFoundError
from central.reservations import audit
from central.reservations.rules import Closure, Facility, FacilityContext, OpeningHours, Room


class StoredClosure(Closure):
    """A closure with its database id."""

    id: str


class Places:
    def __init__(self, db: Database) -> None:
        self.db = db

    # facilities -------------------------------------------------------------

    def put_facility(self, facility: Facility, actor: str) -> Facility:
        """Create or replace a facility's name, address, time zone and hours."""
        now = now_utc()
        values = {"name": facility.name, "address": facility.address,
                  "timezone": facility.timezone,
                  "opening_hours": facility.opening_hours.model_dump(mode="json")}  # fmt: skip
        with self.db.write() as conn:
            stmt = self.db.insert(facility_settings).values(
                id=facility.id, created_at=now, updated_at=now, **values)  # fmt: skip
            changed = {**values, "updated_at": now}
            key = [facility_settings.c.id]
            conn.execute(stmt.on_conflict_do_update(index_elements=key, set_=changed))
            audit.record(conn, actor, "facility.saved", f"facility:{facility.id}")
        return facility

    def facility(self, facility_id: str, conn: Connection | None = None) -> Facility:
        if conn is None:
            with self.db.read() as own:
                return self.facility(facility_id, own)
        row = conn.execute(
            select(facility_settings).where(facility_settings.c.id == facility_id)
        ).first()
        if row is None:
            raise NotFoundError(f"no facility {facility_id!r} (create it with PUT first)")
        return Facility(id=row.id, name=row.name, address=row.address, timezone=row.timezone,
                        opening_hours=OpeningHours.model_validate(row.opening_hours))  # fmt: skip

    def facilities(self) -> list[Facility]:
        with self.db.read() as conn:
            ids = conn.execute(select(facility_settings.c.id).order_by(facility_settings.c.id))
            return [self.facility(i, conn) for i in ids.scalars()]

    # rooms ------------------------------------------------------------------

    def put_room(self, room: Room, actor: str) -> Room:
        """Create or replace a room of an existing facility."""
        now = now_utc()
        values = {"facility": room.facility_id, "door": room.door_id, "name": room.name,
                  "rules": room.rules.model_dump(mode="json"),
                  "fee_per_slot_yen": room.fee_per_slot_yen,
                  "opening_hours": room.opening_hours.model_dump(mode="json")
                  if room.opening_hours else None}  # fmt: skip
        with self.db.write() as conn:
            self.facility(room.facility_id, conn)
            current = conn.execute(select(rooms.c.facility).where(rooms.c.id == room.id)).first()
            if current is not None and current.facility != room.facility_id:
                raise ConflictError(f"room {room.id!r} belongs to facility {current.facility!r}")
            stmt = self.db.insert(rooms).values(id=room.id, created_at=now, updated_at=now,
                                                **values)  # fmt: skip
            conn.execute(stmt.on_conflict_do_update(
                index_elements=[rooms.c.id], set_={**values, "updated_at": now}))  # fmt: skip
            audit.record(conn, actor, "room.saved", f"room:{room.id}", facility=room.facility_id,
                         door=room.door_id, fee_per_slot_yen=room.fee_per_slot_yen)  # fmt: skip
        return room

    def room(self, room_id: str, conn: Connection | None = None) -> Room:
        if conn is None:
            with self.db.read() as own:
                return self.room(room_id, own)
        row = conn.execute(select(rooms).where(rooms.c.id == room_id)).first()
        if row is None:
            raise NotFoundError(f"no room {room_id!r}")
        return _room(row)

    def rooms(self, facility_id: str) -> list[Room]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(rooms).where(rooms.c.facility == facility_id).order_by(rooms.c.id)
            )
            return [_room(r) for r in rows]

    # closures ---------------------------------------------------------------

    def add_closure(self, facility_id: str, closure: Closure, actor: str) -> StoredClosure:
        closure_id = secrets.token_hex(8)
        with self.db.write() as conn:
            self.facility(facility_id, conn)
            if closure.room_id is not None:
                room = self.room(closure.room_id, conn)
                if room.facility_id != facility_id:
                    raise ConflictError(f"room {room.id!r} is not in facility {facility_id!r}")
            conn.execute(closures.insert().values(
                id=closure_id, facility=facility_id, room=closure.room_id,
                starts_at=utc(closure.starts_at), ends_at=utc(closure.ends_at), kind=closure.kind,
                created_by=actor, created_at=now_utc()))  # fmt: skip
            audit.record(conn, actor, "closure.added", f"closure:{closure_id}",
                         facility=facility_id, room=closure.room_id, kind=closure.kind,
                         starts_at=closure.starts_at.isoformat(),
                         ends_at=closure.ends_at.isoformat())  # fmt: skip
        return StoredClosure(id=closure_id, **closure.model_dump())

    def remove_closure(self, closure_id: str, actor: str) -> None:
        with self.db.write() as conn:
            facility = conn.execute(
                select(closures.c.facility).where(closures.c.id == closure_id)
            ).scalar()
            if facility is None:
                raise NotFoundError(f"no closure {closure_id!r}")
            conn.execute(delete(closures).where(closures.c.id == closure_id))
            audit.record(conn, actor, "closure.removed", f"closure:{closure_id}",
                         facility=facility)  # fmt: skip

    def closures(
        self, facility_id: str, since: datetime, until: datetime | None = None,
        conn: Connection | None = None,
    ) -> list[StoredClosure]:  # fmt: skip
        """The facility's closures that end after ``since`` (and start before ``until``)."""
        if conn is None:
            with self.db.read() as own:
                return self.closures(facility_id, since, until, own)
        query = select(closures).where(
            closures.c.facility == facility_id, closures.c.ends_at > utc(since)
        )
        if until is not None:
            query = query.where(closures.c.starts_at < utc(until))
        rows = conn.execute(query.order_by(closures.c.starts_at, closures.c.id))
        return [_closure(r) for r in rows]

    def context(
        self, conn: Connection, facility_id: str, since: datetime, until: datetime
    ) -> FacilityContext:
        """What the rules need of a facility for decisions about ``[since, until)``."""
        found = self.closures(facility_id, since, until, conn)
        plain = tuple(Closure(**c.model_dump(exclude={"id"})) for c in found)
        return FacilityContext(facility=self.facility(facility_id, conn), closures=plain)


def _room(row: Row[Any]) -> Room:
    try:
        return Room(
            id=row.id, facility_id=row.facility, door_id=row.door, name=row.name,
            rules=row.rules, fee_per_slot_yen=row.fee_per_slot_yen,
            opening_hours=row.opening_hours,
        )  # fmt: skip
    except ValidationError as exc:
        # Only a hand-edited database gets here; say which room.
        raise ConflictError(f"room {row.id!r} is stored with invalid settings: {exc}") from None


def _closure(row: Row[Any]) -> StoredClosure:
    return StoredClosure(id=row.id, starts_at=aware(row.starts_at), ends_at=aware(row.ends_at),
                         kind=row.kind, room_id=row.room)  # fmt: skip
