"""A facility with one room for the booking tests: open 09:00-21:00 every
day in Asia/Tokyo, hourly slots, bookings of 1-2 hours up to 30 days ahead,
cancelling up to 24 hours before; and a clock fixed at 08:00 two days from
today (so every booking the tests make lies in the real future too)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from central.db.engine import Database
from central.ingest.store import IngestStore
from central.reservations.bookings import BookingService
from central.reservations.enrolment import EnrolmentService
from central.reservations.members import ENROLMENT_KEY_SCOPE, MemberIn, MemberService
from central.reservations.places import Places
from central.reservations.rules import BookingRules, Facility, OpeningHours, Room
from central.reservations.store import ReservationStore
from contracts.enrolment import CardIn
from tests.harness.keys import fixed_code_key

JST = ZoneInfo("Asia/Tokyo")
FACILITY = "fac-1"
ROOM = "gym-a"
DOOR = "gym-a-door"
CARD_A = "m1-aaaaaaaa-bbbbbbbb-cccccccc-dddddddd"
CARD_B = "m1-eeeeeeee-ffffffff-gggggggg-hhhhhhhh"


def today_plus(days: int, hour: int, minute: int = 0) -> datetime:
    day = datetime.now(JST).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=JST)


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@dataclass
class BookingWorld:
    db: Database
    clock: Clock
    store: ReservationStore
    places: Places
    bookings: BookingService
    members: MemberService
    enrolment: EnrolmentService

    def member(self, name: str = "m", **fields: object) -> str:
        body = MemberIn.model_validate({"display_name": f"Member {name}",
                                        "email": f"{name}@example.jp", **fields})  # fmt: skip
        return self.members.create(body, "test").id

    def enrol(self, member_id: str, card: str, device: str = "door-1") -> str:
        code = self.members.issue_code(member_id, "staff:test", self.clock()).code
        ticket = self.enrolment.redeem(device, code).ticket
        out = self.enrolment.enrol(device, CardIn(ticket=ticket, credential_ref=card,
                                                  kind="member_card"))  # fmt: skip
        return out.card_id


def booking_world(db: Database, rules: BookingRules | None = None) -> BookingWorld:
    clock = Clock(today_plus(2, 8))
    store = ReservationStore(db)
    places = Places(db)
    places.put_facility(Facility(id=FACILITY, name="Sports centre",
                                 opening_hours=OpeningHours.every_day("09:00", "21:00")),
                        "test")  # fmt: skip
    places.put_room(Room(id=ROOM, facility_id=FACILITY, door_id=DOOR, name="Gym A",
                         rules=rules or BookingRules(), fee_per_slot_yen=500), "test")  # fmt: skip
    IngestStore(db, "test").register_device("door-1", FACILITY)
    key = fixed_code_key(ENROLMENT_KEY_SCOPE)
    return BookingWorld(
        db, clock, store, places, BookingService(db, store, fixed_code_key, clock),
        MemberService(db, store, key), EnrolmentService(db, store, key, now=clock),
    )  # fmt: skip
