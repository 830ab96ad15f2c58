"""What the monthly figures are made of, read from central's tables with
SQLAlchemy Core (read only; nothing is stored). Times are stored as naive
UTC; a month is [start, end) in the city's zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from central.db.engine import Database, aware, utc
from central.db.tables import (
    bookings,
    devices,
    events,
    facility_settings,
    health_samples,
    issuance_orders,
    rooms,
)
from central.opendata.aggregate import BookingFact, IssuedItem

GRANTED = "checkin.granted"  # the door's event naming the reservation it granted
PRINTED = "printed"  # an order whose certificates were handed out


@dataclass(frozen=True)
class Facility:
    id: str
    name: str
    address: str
    opening_hours: dict[str, Any]


@dataclass(frozen=True)
class Room:
    facility: str
    id: str
    name: str


@dataclass(frozen=True)
class MonthFacts:
    bookings: list[BookingFact]
    issued: list[IssuedItem]
    samples: dict[str, list[datetime]]  # per device; its first sample ever leads
    device_facility: dict[str, str]
    facilities: list[Facility]
    rooms: list[Room]

    @property
    def empty(self) -> bool:
        """Nothing happened in the month: no booking, certificate or report."""
        return not (self.bookings or self.issued or any(self.samples.values()))


def read_month(db: Database, start: datetime, end: datetime) -> MonthFacts:
    with db.read() as conn:
        found = conn.execute(
            select(
                bookings.c.id,
                bookings.c.facility,
                bookings.c.room,
                bookings.c.member_id,
                bookings.c.starts_at,
                bookings.c.ends_at,
                bookings.c.reservation_id,
            ).where(
                bookings.c.status == "booked",
                bookings.c.starts_at >= utc(start),
                bookings.c.starts_at < utc(end),
            )
        ).all()
        refs = sorted({r.reservation_id or r.id for r in found})
        ref = events.c.data["reservation"].as_string()
        granted: set[str] = set()
        for chunk in range(0, len(refs), 500):
            part = refs[chunk : chunk + 500]
            query = select(ref).where(events.c.type == GRANTED, ref.in_(part)).distinct()
            granted.update(str(r) for (r,) in conn.execute(query))
        orders = conn.execute(
            select(issuance_orders.c["items"], issuance_orders.c.resident_ref).where(
                issuance_orders.c.status == PRINTED,
                issuance_orders.c.issued_at >= utc(start),
                issuance_orders.c.issued_at < utc(end),
            )
        ).all()
        samples = _samples(conn, start, end)
        placed = {
            r.id: r.facility or "" for r in conn.execute(select(devices.c.id, devices.c.facility))
        }
        places = [
            Facility(r.id, r.name, r.address, dict(r.opening_hours or {}))
            for r in conn.execute(select(facility_settings).order_by(facility_settings.c.id))
        ]
        in_use = select(rooms).where(rooms.c.created_at < utc(end))
        room_list = [
            Room(r.facility, r.id, r.name)
            for r in conn.execute(in_use.order_by(rooms.c.facility, rooms.c.id))
        ]
    facts = [
        BookingFact(
            r.facility,
            r.room,
            r.member_id,
            aware(r.starts_at),
            aware(r.ends_at),
            (r.reservation_id or r.id) in granted,
        )
        for r in found
    ]
    issued = [
        IssuedItem(str(item["kind"]), int(item["copies"]), row.resident_ref)
        for row in orders
        for item in row.items
    ]
    return MonthFacts(facts, issued, samples, placed, places, room_list)


def _samples(conn: Any, start: datetime, end: datetime) -> dict[str, list[datetime]]:
    """Health report times in the month per device (raw or hourly means:
    either marks its hour), led by the device's first sample ever."""
    at = health_samples.c.at
    out: dict[str, list[datetime]] = {}
    first = select(health_samples.c.device, func.min(at)).group_by(health_samples.c.device)
    firsts = {device: aware(moment) for device, moment in conn.execute(first)}
    query = select(health_samples.c.device, at).where(at >= utc(start), at < utc(end))
    for device, moment in conn.execute(query):
        out.setdefault(device, [firsts[device]]).append(aware(moment))
    return out
