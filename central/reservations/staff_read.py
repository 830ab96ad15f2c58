"""Read models of the staff pages: the day and week grid of a facility, the
revocation window (devices that have not applied a change yet) and the
filtered audit trail. Plain queries, no HTML."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import or_, select

from central.db.engine import Database, aware, utc
from central.db.tables import audit_log, bookings, closures, devices, facilities, members
from central.db.tables import member_cards as cards
from central.reservations.audit import AuditEntry, reservation_actions
from central.reservations.booking_rows import BookingView, view
from central.reservations.places import Places, StoredClosure
from central.reservations.rules import OpeningHours, Room

DEFAULT_HOURS = (8, 22)  # grid rows when no room of the facility has opening hours


@dataclass(frozen=True)
class GridBooking:
    booking: BookingView
    member_name: str  # "" for a walk-in; shown only on signed-in staff pages


@dataclass
class GridDay:
    day: date
    start: datetime
    cells: dict[str, list[GridBooking]] = field(default_factory=dict)  # room -> bookings
    closed: dict[str, list[StoredClosure]] = field(default_factory=dict)  # room -> closures


@dataclass(frozen=True)
class Grid:
    facility: str
    rooms: list[Room]
    days: list[GridDay]
    hours: list[datetime]  # row starts of the day view (first day)
    closures: list[StoredClosure]

    def at(self, day: GridDay, room: str, hour: datetime) -> list[GridBooking]:
        end = hour + timedelta(hours=1)
        return [g for g in day.cells.get(room, [])
                if g.booking.starts_at < end and g.booking.ends_at > hour]  # fmt: skip

    def closed_at(self, day: GridDay, room: str, hour: datetime) -> bool:
        end = hour + timedelta(hours=1)
        return any(c.starts_at < end and c.ends_at > hour for c in day.closed.get(room, []))


def grid(db: Database, facility_id: str, first: date, days: int) -> Grid:
    """Rooms × time for ``days`` local days from ``first`` (booked only)."""
    places = Places(db)
    facility = places.facility(facility_id)
    rooms = places.rooms(facility_id)
    zone = facility.zone
    start = datetime.combine(first, time(), zone)
    end = datetime.combine(first + timedelta(days=days), time(), zone)
    found = _bookings(db, facility_id, start, end)
    closed = places.closures(facility_id, start, end)
    names = _names(db, {b.member_id for b in found if b.member_id})
    grid_days = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        d_start = datetime.combine(day, time(), zone)
        d_end = datetime.combine(day + timedelta(days=1), time(), zone)
        gd = GridDay(day, d_start)
        for room in rooms:
            gd.cells[room.id] = [
                GridBooking(b, names.get(b.member_id or "", "")) for b in found
                if b.room == room.id and b.starts_at < d_end and b.ends_at > d_start
            ]  # fmt: skip
            gd.closed[room.id] = [c for c in closed if c.room_id in (None, room.id)
                                  and c.starts_at < d_end and c.ends_at > d_start]  # fmt: skip
        grid_days.append(gd)
    low, high = _hours(rooms, facility.opening_hours)
    hours = [datetime.combine(first, time(h), zone) for h in range(low, high)]
    return Grid(facility_id, rooms, grid_days, hours, closed)


def _hours(rooms: list[Room], facility_hours: OpeningHours) -> tuple[int, int]:
    """The earliest opening and latest closing hour over the week."""
    windows = [w for r in rooms for day in (r.opening_hours or facility_hours).weekly.values()
               for w in day]  # fmt: skip
    if not windows:
        return DEFAULT_HOURS
    opens = min(int(w.opens) for w in windows) // 60
    closes = -(-max(int(w.closes) for w in windows) // 60)
    return opens, max(closes, opens + 1)


def _bookings(db: Database, facility: str, start: datetime, end: datetime) -> list[BookingView]:
    with db.read() as conn:
        found = conn.execute(select(bookings).where(
            bookings.c.facility == facility, bookings.c.status == "booked",
            bookings.c.starts_at < utc(end), bookings.c.ends_at > utc(start))
            .order_by(bookings.c.starts_at))  # fmt: skip
        return [view(r) for r in found]


def _names(db: Database, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    with db.read() as conn:
        rows = conn.execute(select(members.c.id, members.c.display_name)
                            .where(members.c.id.in_(sorted(ids))))  # fmt: skip
        return {r.id: r.display_name for r in rows}


# the revocation window ------------------------------------------------------


@dataclass(frozen=True)
class DeviceLag:
    device: str
    status: str
    reported_version: int | None  # what its last health report said
    offline_for: timedelta | None  # since the will, while offline
    last_seen: datetime | None


def facility_version(db: Database, facility: str) -> int:
    with db.read() as conn:
        version = conn.execute(select(facilities.c.version).where(facilities.c.id == facility))
        return int(version.scalar() or 0)


def devices_behind(db: Database, facility: str, version: int, now: datetime) -> list[DeviceLag]:
    """The facility's devices whose cache is below ``version``: they still
    decide on the older reservations (e.g. let a revoked card in) until they
    reconnect and catch up. No report counts as behind."""
    with db.read() as conn:
        rows = conn.execute(select(devices).where(devices.c.facility == facility)
                            .order_by(devices.c.id)).all()  # fmt: skip
    behind = []
    for r in rows:
        reported = (r.health or {}).get("reservation_version")
        reported = reported if isinstance(reported, int) else None
        if reported is not None and reported >= version:
            continue
        offline = r.status == "offline" and r.status_at is not None
        behind.append(DeviceLag(
            r.id, r.status, reported, now - aware(r.status_at) if offline else None,
            aware(r.last_seen) if r.last_seen else None))  # fmt: skip
    return behind


Revocation = tuple[AuditEntry, dict[str, list[DeviceLag]]]


def revocations(db: Database, member_id: str, now: datetime) -> list[Revocation]:
    """The member's card revocations with, per facility re-published, the
    devices that have not applied that version yet."""
    card_ids = select("card:" + cards.c.id).where(cards.c.member_id == member_id)
    with db.read() as conn:
        found = conn.execute(select(audit_log).where(
            audit_log.c.action == "card.revoked", audit_log.c.subject.in_(card_ids))
            .order_by(audit_log.c.pk.desc()).limit(20)).all()  # fmt: skip
    out = []
    for r in found:
        versions = dict((r.detail or {}).get("versions") or {})
        lag = {f: devices_behind(db, f, int(v), now) for f, v in sorted(versions.items())}
        out.append((AuditEntry(r.pk, aware(r.at), r.actor, r.action, r.subject, dict(r.detail)),
                    lag))  # fmt: skip
    return out


# the audit trail --------------------------------------------------------------


def audit_trail(
    db: Database, *, facility: str = "", member: str = "", booking: str = "", limit: int = 200
) -> list[AuditEntry]:
    """Newest first; each filter narrows to entries about that facility
    (its bookings, closures, settings), member (the member, their bookings
    and cards) or booking."""
    query = (select(audit_log).where(reservation_actions())
             .order_by(audit_log.c.pk.desc()).limit(limit))  # fmt: skip
    detail = audit_log.c.detail
    if booking:
        query = query.where(audit_log.c.subject == f"booking:{booking}")
    if member:
        query = query.where(or_(
            audit_log.c.subject == f"member:{member}",
            detail["member"].as_string() == member,
            audit_log.c.subject.in_(select("booking:" + bookings.c.id)
                                    .where(bookings.c.member_id == member)),
            audit_log.c.subject.in_(select("card:" + cards.c.id)
                                    .where(cards.c.member_id == member))))  # fmt: skip
    if facility:
        query = query.where(or_(
            audit_log.c.subject == f"facility:{facility}",
            detail["facility"].as_string() == facility,
            audit_log.c.subject.in_(select("booking:" + bookings.c.id)
                                    .where(bookings.c.facility == facility)),
            audit_log.c.subject.in_(select("closure:" + closures.c.id)
                                    .where(closures.c.facility == facility))))  # fmt: skip
    with db.read() as conn:
        return [AuditEntry(r.pk, aware(r.at), r.actor, r.action, r.subject, dict(r.detail))
                for r in conn.execute(query)]  # fmt: skip


def upcoming_bookings(db: Database, room_id: str, now: datetime) -> int:
    """How many booked bookings of the room have not ended yet (each carries
    the room's door as it was when it was made)."""
    with db.read() as conn:
        query = select(bookings.c.id).where(
            bookings.c.room == room_id, bookings.c.status == "booked",
            bookings.c.ends_at > utc(now),
        )  # fmt: skip
        return len(conn.execute(query).all())
