"""The booking service on a real database (an SQLite file and PostgreSQL):
each refusal, the devices' copy of a booking (cards and code hash), cancel
and move, and racing bookings of one slot -- exactly one wins."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from central.db.engine import Database
from central.errors import BookingRefused, ConflictError, NotFoundError
from central.reservations import audit
from central.reservations.rules import BookingRules, Closure
from contracts.reservations_hash import code_hash
from tests.harness.booking import (
    CARD_A,
    CARD_B,
    DOOR,
    FACILITY,
    ROOM,
    BookingWorld,
    booking_world,
    today_plus,
)
from tests.harness.keys import fixed_code_key

pytestmark = pytest.mark.integration


@pytest.fixture
def world(central_db: Database) -> BookingWorld:
    return booking_world(central_db, BookingRules(max_active_bookings=3))


def refusal(world: BookingWorld, member: str | None, start: int, end: int, days: int = 2) -> str:
    with pytest.raises(BookingRefused) as refused:
        world.bookings.create(ROOM, today_plus(days, start), today_plus(days, end),
                              member_id=member, actor="test")  # fmt: skip
    return refused.value.code


def test_booking_create_publishes_the_members_cards_and_the_code_hash(world: BookingWorld) -> None:
    member = world.member()
    world.enrol(member, CARD_A)
    made = world.bookings.create(ROOM, today_plus(2, 10), today_plus(2, 11), member_id=member,
                                 actor="token:t1", source="site")  # fmt: skip
    assert made.code.isdigit() and len(made.code) == 6
    assert made.booking.door == DOOR and made.booking.status == "booked"
    delta = world.store.deltas_since(FACILITY, 0)
    assert delta is not None
    published = delta[-1].changes[-1].reservation
    assert published.id == made.booking.reservation_id
    assert published.credential_refs == [CARD_A]
    assert published.code_hash == code_hash(fixed_code_key(FACILITY), FACILITY, made.code)
    entry = audit.entries(world.db, subject=f"booking:{made.booking.id}")[0]
    assert (entry.actor, entry.action) == ("token:t1", "booking.created")


@pytest.mark.parametrize(
    ("start", "end", "days", "code"),
    [(8, 9, 2, "outside_opening_hours"), (20, 22, 2, "outside_opening_hours"),
     (10, 13, 2, "too_long"), (10, 11, 40, "too_far_ahead"), (9, 10, 33, "too_far_ahead"),
     (10, 11, -1, "in_the_past")],
)  # fmt: skip
def test_booking_refuses_rule_breaks(
    world: BookingWorld, start: int, end: int, days: int, code: str
) -> None:
    assert refusal(world, world.member(), start, end, days) == code


def test_booking_refuses_overlap_slot_taken_closure_and_limits(world: BookingWorld) -> None:
    alice, bob = world.member("alice"), world.member("bob")
    world.bookings.create(ROOM, today_plus(2, 10), today_plus(2, 12), member_id=alice, actor="t")
    assert refusal(world, alice, 11, 12) == "overlap"
    assert refusal(world, bob, 11, 12) == "slot_taken"
    assert refusal(world, None, 10, 11) == "slot_taken"  # a walk-in too
    world.places.add_closure(FACILITY, Closure(starts_at=today_plus(3, 0), ends_at=today_plus(4, 0),
                                               kind="maintenance"), "staff:x")  # fmt: skip
    assert refusal(world, bob, 10, 11, days=3) == "closed"
    for day in (5, 6):
        world.bookings.create(ROOM, today_plus(day, 10), today_plus(day, 11), member_id=alice,
                              actor="t")  # fmt: skip
    assert refusal(world, alice, 10, 11, days=7) == "member_limit_active"


def test_booking_refuses_a_suspended_member_and_an_unknown_one(world: BookingWorld) -> None:
    member = world.member()
    world.members.set_status(member, "suspended", "staff:x")
    assert refusal(world, member, 10, 11) == "member_suspended"
    assert refusal(world, "nobody", 10, 11) == "unknown_member"
    with pytest.raises(NotFoundError):
        world.bookings.create("no-room", today_plus(2, 10), today_plus(2, 11), member_id=None,
                              actor="t")  # fmt: skip


def test_booking_cancel_honours_the_deadline_unless_staff_override(world: BookingWorld) -> None:
    member = world.member()
    soon = world.bookings.create(ROOM, today_plus(2, 10), today_plus(2, 11), member_id=member,
                                 actor="t").booking  # fmt: skip
    with pytest.raises(BookingRefused) as refused:
        world.bookings.cancel(soon.id, actor="site")
    assert refused.value.code == "cancellation_deadline_passed"
    cancelled = world.bookings.cancel(soon.id, actor="staff:x", enforce_deadline=False)
    assert cancelled.status == "cancelled"
    with pytest.raises(BookingRefused) as again:
        world.bookings.cancel(soon.id, actor="staff:x", enforce_deadline=False)
    assert again.value.code == "already_cancelled"
    delta = world.store.deltas_since(FACILITY, 0)
    assert delta is not None and delta[-1].changes[-1].op == "cancel"
    # The slot is free again.
    world.bookings.create(ROOM, today_plus(2, 10), today_plus(2, 11), member_id=None, actor="t")


def test_booking_move_checks_the_new_slot(world: BookingWorld) -> None:
    alice, bob = world.member("alice"), world.member("bob")
    mine = world.bookings.create(ROOM, today_plus(3, 10), today_plus(3, 11), member_id=alice,
                                 actor="t").booking  # fmt: skip
    world.bookings.create(ROOM, today_plus(3, 14), today_plus(3, 15), member_id=bob, actor="t")
    with pytest.raises(BookingRefused) as refused:
        world.bookings.move(mine.id, today_plus(3, 14), today_plus(3, 16), actor="staff:x")
    assert refused.value.code == "slot_taken"
    moved = world.bookings.move(mine.id, today_plus(3, 10, 0) + timedelta(hours=1),
                                today_plus(3, 13), actor="staff:x")  # fmt: skip
    assert (moved.starts_at, moved.ends_at) == (today_plus(3, 11), today_plus(3, 13))
    assert world.store.get(mine.id).starts_at == today_plus(3, 11)


def test_booking_availability_lists_free_slots(world: BookingWorld) -> None:
    world.bookings.create(ROOM, today_plus(2, 10), today_plus(2, 12), member_id=None, actor="t")
    starts = [s.starts_at for s in world.bookings.availability(ROOM, today_plus(2, 0).date())]
    assert today_plus(2, 9) in starts and today_plus(2, 12) in starts
    assert today_plus(2, 10) not in starts and today_plus(2, 11) not in starts
    assert len(starts) == 12 - 2


def test_member_email_is_unique_and_lower_cased(world: BookingWorld) -> None:
    member = world.member("Carol")
    assert world.members.get(member).email == "carol@example.jp"
    with pytest.raises(ConflictError):
        world.member("CAROL")
    assert world.members.find(email="Carol@Example.jp").id == member


def _race(world: BookingWorld, members: list[str | None]) -> list[str]:
    """Every member books the same slot at once; the outcomes."""
    barrier = threading.Barrier(len(members))
    outcomes: list[str] = []
    lock = threading.Lock()

    def book(member: str | None) -> None:
        barrier.wait()
        try:
            world.bookings.create(ROOM, today_plus(4, 10), today_plus(4, 11), member_id=member,
                                  actor="race")  # fmt: skip
            result = "booked"
        except BookingRefused as exc:
            result = exc.code
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=book, args=(m,)) for m in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def test_booking_race_on_postgresql_exactly_one_wins(postgres_url: str) -> None:
    with Database(postgres_url, pool_size=12) as db:
        world = booking_world(db)
        members: list[str | None] = [world.member(f"p{n}") for n in range(12)]
        outcomes = _race(world, members)
        assert sorted(outcomes) == ["booked"] + ["slot_taken"] * 11
        assert len(world.bookings.list_bookings(room=ROOM, status="booked")) == 1


def test_booking_exclusion_constraint_refuses_a_writer_that_skips_the_service(
    postgres_url: str,
) -> None:
    """The database itself refuses the overlap, whatever the code above it does."""
    from sqlalchemy.exc import IntegrityError

    from central.db.tables import bookings

    with Database(postgres_url) as db:
        world = booking_world(db)
        made = world.bookings.create(ROOM, today_plus(2, 10), today_plus(2, 12), member_id=None,
                                     actor="t").booking  # fmt: skip
        row = {"external_id": None, "facility": FACILITY, "room": ROOM, "door": DOOR,
               "member_id": None, "starts_at": made.starts_at.replace(tzinfo=None),
               "ends_at": made.ends_at.replace(tzinfo=None), "status": "booked",
               "code_hash": None, "source": "staff", "created_by": "t", "reservation_id": None,
               "created_at": made.starts_at.replace(tzinfo=None),
               "updated_at": made.starts_at.replace(tzinfo=None)}  # fmt: skip
        with pytest.raises(IntegrityError, match="ex_bookings_door_no_overlap"), db.write() as c:
            c.execute(bookings.insert().values(id="sneaky", **row))
        with db.write() as conn:  # a cancelled one blocks nothing
            conn.execute(bookings.insert().values(id="gone", **{**row, "status": "cancelled"}))


def test_booking_race_on_sqlite_exactly_one_wins(tmp_path: Path) -> None:
    with Database(f"sqlite:///{tmp_path / 'central.db'}", pool_size=12) as db:
        world = booking_world(db)
        members: list[str | None] = [world.member(f"s{n}") for n in range(12)]
        outcomes = _race(world, members)
        assert sorted(outcomes) == ["booked"] + ["slot_taken"] * 11
        assert len(world.bookings.list_bookings(room=ROOM, status="booked")) == 1


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    with Database(f"sqlite:///{tmp_path / 'c.db'}") as db:
        yield db


def test_card_revocation_republishes_future_bookings_without_it(sqlite_db: Database) -> None:
    world = booking_world(sqlite_db)
    member = world.member()
    card_a = world.enrol(member, CARD_A)
    world.enrol(member, CARD_B)
    for day in (2, 3):
        world.bookings.create(ROOM, today_plus(day, 10), today_plus(day, 11), member_id=member,
                              actor="t")  # fmt: skip
    before = world.store.version(FACILITY)
    world.members.revoke_card(member, card_a, "staff:x")
    deltas = world.store.deltas_since(FACILITY, before)
    assert deltas is not None and deltas[0].version == before + 1  # one change batch
    assert [c.reservation.credential_refs for c in deltas[0].changes] == [[CARD_B], [CARD_B]]
    statuses = {c.credential_ref: c.status for c in world.members.cards(member)}
    assert statuses == {CARD_A: "revoked", CARD_B: "active"}
