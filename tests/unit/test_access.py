"""Access decisions (pure): windows, grace, staff, clock and cache policies,
code lockout; examples plus hypothesis properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from demo.config import write_demo_config
from kiosk.checkin.access import (
    CodeAttempts,
    DeviceState,
    Policy,
    Reason,
    Reservation,
    decide,
    decide_code,
    policy_for_door,
)
from sync.config import load_config

TOKYO = ZoneInfo("Asia/Tokyo")
T0 = datetime(2026, 11, 28, 10, 0, tzinfo=TOKYO)
POLICY = Policy()
FRESH = timedelta(minutes=1)


def state(now: datetime = T0, trusted: bool = True, age: timedelta | None = FRESH) -> DeviceState:
    return DeviceState(now, trusted, age)


def booking(
    start_min: int = 0, length_min: int = 60, door: str = "room-a", cancelled: bool = False
) -> Reservation:
    start = T0 + timedelta(minutes=start_min)
    end = start + timedelta(minutes=length_min)
    return Reservation(f"r{start_min}-{door}", door, start, end, cancelled)


def test_access_grants_inside_window() -> None:
    d = decide("room-a", [booking(-30)], state(), POLICY)
    assert d.granted and d.reason is Reason.RESERVATION
    assert d.reservation_id == "r-30-room-a"
    assert d.unlock_seconds == 5.0


def test_access_early_entry_grace_boundary() -> None:
    r = booking(10)  # starts 10:10, early entry 10 min -> opens 10:00
    assert decide("room-a", [r], state(T0), POLICY).granted
    early = decide("room-a", [r], state(T0 - timedelta(minutes=1)), POLICY)
    assert early.reason is Reason.TOO_EARLY
    assert early.opens_at == T0


def test_access_late_exit_grace_boundary() -> None:
    r = booking(-70)  # 08:50-09:50, late exit until 10:00 (exclusive)
    assert decide("room-a", [r], state(T0 - timedelta(seconds=1)), POLICY).granted
    assert decide("room-a", [r], state(T0), POLICY).reason is Reason.ENDED


def test_access_other_door_named() -> None:
    d = decide("room-a", [booking(-5, door="room-b")], state(), POLICY)
    assert not d.granted and d.reason is Reason.OTHER_DOOR and d.other_door == "room-b"


def test_access_cancelled_and_unknown() -> None:
    assert (
        decide("room-a", [booking(-5, cancelled=True)], state(), POLICY).reason is Reason.CANCELLED
    )
    assert decide("room-a", [], state(), POLICY).reason is Reason.NOT_REGISTERED


def test_access_staff_opens_even_with_untrusted_clock_and_stale_cache() -> None:
    strict = Policy(deny_on_stale_cache=True)
    d = decide("room-a", [], state(trusted=False, age=None), strict, is_staff=True)
    assert d.granted and d.reason is Reason.STAFF and d.stale_cache


def test_access_untrusted_clock_policy() -> None:
    assert (
        decide("room-a", [booking(-5)], state(trusted=False), POLICY).reason
        is Reason.CLOCK_UNTRUSTED
    )
    lenient = Policy(deny_on_untrusted_clock=False)
    assert decide("room-a", [booking(-5)], state(trusted=False), lenient).granted


def test_access_stale_cache_policy() -> None:
    old = timedelta(hours=5)
    allowed = decide("room-a", [booking(-5)], state(age=old), POLICY)
    assert allowed.granted and allowed.stale_cache
    strict = Policy(deny_on_stale_cache=True)
    assert decide("room-a", [booking(-5)], state(age=old), strict).reason is Reason.STALE_CACHE
    assert decide("room-a", [booking(-5)], state(age=None), strict).reason is Reason.STALE_CACHE


def test_access_unlock_capped_by_max() -> None:
    d = decide("room-a", [booking(-5)], state(), Policy(unlock_seconds=90, max_unlock_seconds=30))
    assert d.unlock_seconds == 30


def test_access_works_across_timezones() -> None:
    utc_now = T0.astimezone(UTC)
    assert decide("room-a", [booking(-5)], state(utc_now), POLICY).granted


def test_access_code_lockout_after_attempts() -> None:
    policy = Policy(code_max_attempts=3, code_lockout=timedelta(minutes=5))
    attempts = CodeAttempts()
    for _ in range(2):
        d, attempts = decide_code("room-a", [], state(), policy, attempts)
        assert d.reason is Reason.NOT_REGISTERED
    d, attempts = decide_code("room-a", [], state(), policy, attempts)
    assert d.reason is Reason.CODE_LOCKED and d.opens_at == T0 + timedelta(minutes=5)
    # While locked even the right code is refused without being looked at.
    d, attempts = decide_code(
        "room-a", [booking(-5)], state(T0 + timedelta(minutes=4)), policy, attempts
    )
    assert d.reason is Reason.CODE_LOCKED
    d, attempts = decide_code(
        "room-a", [booking(-5)], state(T0 + timedelta(minutes=5)), policy, attempts
    )
    assert d.granted and attempts == CodeAttempts()


def test_access_right_code_wrong_time_is_not_a_guess() -> None:
    d, attempts = decide_code("room-a", [booking(120)], state(), POLICY, CodeAttempts())
    assert d.reason is Reason.TOO_EARLY and attempts.failures == 0


def test_access_policy_from_demo_config(tmp_path: Path) -> None:
    policy = policy_for_door(load_config(write_demo_config(tmp_path)), "room-a")
    assert policy.early_entry == timedelta(minutes=10)
    assert policy.unlock_seconds == 5 and policy.max_unlock_seconds == 30
    assert policy.deny_on_untrusted_clock


minutes = st.integers(min_value=-600, max_value=600)
doors = st.sampled_from(["room-a", "room-b"])
reservations = st.builds(
    lambda s, length, door, cancelled: booking(s, length, door, cancelled=cancelled),
    minutes, st.integers(min_value=1, max_value=240), doors, st.booleans(),
)  # fmt: skip
# Reservation ids are unique in a cache, as they are in the store.
bookings = st.lists(reservations, max_size=6, unique_by=lambda r: r.id)
policies = st.builds(
    Policy,
    early_entry=st.integers(0, 60).map(lambda m: timedelta(minutes=m)),
    late_exit=st.integers(0, 60).map(lambda m: timedelta(minutes=m)),
    deny_on_stale_cache=st.booleans(),
    deny_on_untrusted_clock=st.booleans(),
    unlock_seconds=st.floats(0.5, 600),
    max_unlock_seconds=st.floats(0.5, 60),
)


@given(bookings, doors, minutes, st.booleans(), policies,
       st.none() | st.integers(0, 300).map(lambda m: timedelta(minutes=m)))  # fmt: skip
def test_access_grant_always_justified(
    candidates: list[Reservation], door: str, offset: int, trusted: bool, policy: Policy,
    age: timedelta | None,
) -> None:  # fmt: skip
    now = T0 + timedelta(minutes=offset)
    d = decide(door, candidates, DeviceState(now, trusted, age), policy)
    if d.granted:
        chosen = next(r for r in candidates if r.id == d.reservation_id and r.door == door)
        assert not chosen.cancelled
        assert chosen.starts_at - policy.early_entry <= now < chosen.ends_at + policy.late_exit
        assert 0 < d.unlock_seconds <= policy.max_unlock_seconds
        assert trusted or not policy.deny_on_untrusted_clock
        assert not (d.stale_cache and policy.deny_on_stale_cache)
    else:
        assert d.unlock_seconds == 0


@given(bookings, doors, minutes, policies)
def test_access_more_grace_never_denies_what_less_grace_grants(
    candidates: list[Reservation], door: str, offset: int, policy: Policy
) -> None:
    now = DeviceState(T0 + timedelta(minutes=offset), True, FRESH)
    wider = Policy(
        early_entry=policy.early_entry + timedelta(minutes=5),
        late_exit=policy.late_exit + timedelta(minutes=5),
        unlock_seconds=policy.unlock_seconds,
        max_unlock_seconds=policy.max_unlock_seconds,
    )
    narrow = Policy(early_entry=policy.early_entry, late_exit=policy.late_exit)
    if decide(door, candidates, now, narrow).granted:
        assert decide(door, candidates, now, wider).granted


@given(st.lists(st.booleans(), max_size=30))
def test_access_code_attempts_never_exceed_limit(outcomes: list[bool]) -> None:
    policy = Policy(code_max_attempts=4)
    attempts = CodeAttempts()
    now = T0
    for wrong in outcomes:
        attempts = attempts.after_failure(now, policy) if wrong else attempts.after_success()
        assert attempts.failures < policy.code_max_attempts
        now += timedelta(seconds=30)
