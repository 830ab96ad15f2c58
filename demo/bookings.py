"""The demo's bookings, made at central through its services.

:func:`seed_booking` sets up, in central's database, a facility whose rooms
are the demo device's doors (open around the clock, 5-minute slots), a demo
member with the demo member card and the demo My Number Card enrolled at the
door device (the references computed with the demo's credential key exactly
as the device computes them), and a booking of that member at the first door
starting at the next slot, i.e. within 5 minutes: the door admits a member
``policy.early_entry_minutes`` (10) before the start, so the card opens it
now. The booking goes through :class:`BookingService`, so it reaches the
device as a versioned delta from central's publisher, like any booking.

Running the demo again on the same state folder reuses the member, the cards
and a booking that still covers now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from central.config import code_key
from central.config import load_config as load_central
from central.db.engine import Database
from central.errors import NotFoundError
from central.ingest.store import IngestStore
from central.reservations.booking_rows import BookingView
from central.reservations.bookings import BookingService
from central.reservations.enrolment import EnrolmentService
from central.reservations.members import ENROLMENT_KEY_SCOPE, Member, MemberIn, MemberService
from central.reservations.places import Places
from central.reservations.rules import BookingRules, Facility, OpeningHours, Room
from central.reservations.store import ReservationStore
from contracts.enrolment import CardIn, CardKind
from sync.config import DeviceConfig

ACTOR = "staff:demo"
SLOT_MINUTES = 5
BOOKING_HOURS = 8
DEMO_EMAIL = "demo.member@example.jp"
DEMO_MEMBER = "Demo Member"
FACILITY_NAME = "Demo gym"
RULES = BookingRules(slot_minutes=SLOT_MINUTES, min_duration_minutes=SLOT_MINUTES,
                     max_duration_minutes=BOOKING_HOURS * 60)  # fmt: skip


@dataclass(frozen=True)
class DemoBooking:
    """What the demo seeded, for its summary and its test."""

    facility: str
    facility_name: str
    room: str
    room_name: str
    door: str
    member_id: str
    member_name: str
    cards: int
    booking_id: str
    reservation_id: str
    starts_at: datetime
    ends_at: datetime
    code: str | None  # None when an earlier run's booking was reused
    early_minutes: int

    def summary(self, zone: ZoneInfo) -> list[str]:
        start, end = self.starts_at.astimezone(zone), self.ends_at.astimezone(zone)
        code = f", reservation code {self.code}" if self.code else ""
        return [
            f"  facility/room  : {self.facility_name} ({self.facility}), room {self.room_name}"
            f" ({self.room}) = door {self.door}; open 00:00-24:00, {SLOT_MINUTES}-minute slots",
            f"  member         : {self.member_name} ({self.member_id}), {self.cards} card(s)"
            " enrolled: the demo member card (F5) and My Number Card (F6)",
            f"  booking        : {self.booking_id} at {self.room},"
            f" {start:%Y-%m-%d %H:%M}-{end:%H:%M} {start.tzname()} (the door admits"
            f" {self.early_minutes} minutes early){code}; made with BookingService, sent to"
            " the device as a delta",
        ]


def slot_after(moment: datetime, zone: ZoneInfo) -> datetime:
    """The first slot boundary (local grid from midnight) at least 5 s after ``moment``."""
    local = (moment + timedelta(seconds=5)).astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    slots = -(-(local - midnight) // timedelta(minutes=SLOT_MINUTES))  # ceiling
    return midnight + slots * timedelta(minutes=SLOT_MINUTES)


def booking_times(now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """From the next slot for ``BOOKING_HOURS``, ending by local midnight (a
    booking fits in one day's opening window)."""
    start = slot_after(now, zone)
    midnight = (start + timedelta(days=1)).replace(hour=0, minute=0)
    return start, min(start + timedelta(hours=BOOKING_HOURS), midnight)


def put_places(places: Places, config: DeviceConfig) -> list[Room]:
    """The device's facility, one room per door (room id = door id)."""
    facility = Facility(id=config.device.facility, name=FACILITY_NAME,
                        timezone=config.device.timezone,
                        opening_hours=OpeningHours.every_day("00:00", "24:00"))  # fmt: skip
    places.put_facility(facility, ACTOR)
    rooms = [Room(id=door.id, facility_id=facility.id, door_id=door.id,
                  name=door.name or door.id, rules=RULES, fee_per_slot_yen=100)
             for door in config.doors]  # fmt: skip
    return [places.put_room(room, ACTOR) for room in rooms]


def demo_member(members: MemberService) -> Member:
    try:
        return members.find(email=DEMO_EMAIL)
    except NotFoundError:
        return members.create(MemberIn(display_name=DEMO_MEMBER, email=DEMO_EMAIL), ACTOR)


def enrol_cards(
    members: MemberService, enrolment: EnrolmentService, member: Member, device: str,
    cards: dict[str, CardKind],
) -> int:  # fmt: skip
    """Enrol each card the way a member does at the door device: a one-time
    code from staff, redeemed at the device, then the card's reference
    (cards already active for the member are left as they are)."""
    active = {c.credential_ref for c in members.cards(member.id) if c.status == "active"}
    for ref, kind in cards.items():
        if ref in active:
            continue
        code = members.issue_code(member.id, ACTOR, datetime.now(UTC)).code
        ticket = enrolment.redeem(device, code).ticket
        enrolment.enrol(device, CardIn(ticket=ticket, credential_ref=ref, kind=kind,
                                       label=f"demo {kind.replace('_', ' ')}"))  # fmt: skip
        enrolment.close(device, ticket)
    return sum(1 for c in members.cards(member.id) if c.status == "active")


def current_booking(service: BookingService, member_id: str, door: str) -> BookingView | None:
    """An earlier run's booking of the member at ``door`` that opens it now."""
    soon = datetime.now(UTC) + timedelta(minutes=SLOT_MINUTES)
    for booking in service.member_bookings(member_id):
        if booking.door == door and booking.starts_at <= soon:
            return booking
    return None


def seed_booking(
    central_config: str, config: DeviceConfig, cards: dict[str, CardKind]
) -> DemoBooking:
    """Facility, rooms, the demo member with ``cards`` enrolled and a booking
    covering now at the first door, all through central's services."""
    central = load_central(central_config)
    key = code_key(central)
    zone = ZoneInfo(config.device.timezone)
    db = Database(central.database.url)
    try:
        IngestStore(db, "demo").register_device(config.device.id, config.device.facility)
        store, places = ReservationStore(db), Places(db)
        room = put_places(places, config)[0]
        members = MemberService(db, store, key(ENROLMENT_KEY_SCOPE))
        enrolment = EnrolmentService(db, store, key(ENROLMENT_KEY_SCOPE))
        member = demo_member(members)
        enrolled = enrol_cards(members, enrolment, member, config.device.id, cards)
        service = BookingService(db, store, key)
        code: str | None = None
        booking = current_booking(service, member.id, room.door_id)
        if booking is None:
            starts, ends = booking_times(datetime.now(UTC), zone)
            made = service.create(room.id, starts, ends, member_id=member.id, actor=ACTOR)
            booking, code = made.booking, made.code
        facility = places.facility(room.facility_id)
    finally:
        db.close()
    return DemoBooking(
        facility=facility.id, facility_name=facility.name, room=room.id, room_name=room.name,
        door=room.door_id, member_id=member.id, member_name=member.display_name, cards=enrolled,
        booking_id=booking.id, reservation_id=booking.reservation_id or booking.id,
        starts_at=booking.starts_at, ends_at=booking.ends_at, code=code,
        early_minutes=config.policy.early_entry_minutes,
    )  # fmt: skip
