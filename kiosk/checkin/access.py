"""Access decisions for facility check-in: pure logic, no I/O.

Given who presented themselves (an opaque credential reference, or a hashed
reservation code), at which door, when, the reservations the device holds for
them, the state of the device (is the clock trusted, how old is the
reservation cache) and the policy from the device configuration, decide:
grant or deny, why, which reservation, and for how long to unlock.

Everything here is plain data in and out, so it is tested without any
service (``tests/unit/test_access.py``, with hypothesis), and the door
terminal, the touchscreen and the benchmark all use the same function.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sync.config import DeviceConfig


class Reason(StrEnum):
    """Why a decision came out as it did (also the event's ``reason``)."""

    RESERVATION = "reservation"  # granted: a reservation covers now
    STAFF = "staff"  # granted: staff credential
    NOT_REGISTERED = "not_registered"  # no reservation at all for this credential/code
    TOO_EARLY = "too_early"  # next reservation starts later today/after
    ENDED = "ended"  # the reservation is over (after late-exit grace)
    OTHER_DOOR = "other_door"  # a reservation covers now, but for another door
    CANCELLED = "cancelled"  # the matching reservation was cancelled
    CLOCK_UNTRUSTED = "clock_untrusted"  # clock not synchronised and policy denies
    STALE_CACHE = "stale_cache"  # reservation cache too old and policy denies
    CODE_LOCKED = "code_locked"  # too many wrong codes: keypad locked for a while


@dataclass(frozen=True, slots=True)
class Reservation:
    """What the decision needs of one reservation (times are aware datetimes)."""

    id: str
    door: str
    starts_at: datetime
    ends_at: datetime
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class Policy:
    early_entry: timedelta = timedelta(minutes=10)
    late_exit: timedelta = timedelta(minutes=10)
    stale_after: timedelta = timedelta(minutes=60)
    deny_on_stale_cache: bool = False
    deny_on_untrusted_clock: bool = True
    unlock_seconds: float = 5.0
    max_unlock_seconds: float = 30.0
    code_max_attempts: int = 5
    code_lockout: timedelta = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class DeviceState:
    """What the device knows about itself at decision time."""

    now: datetime
    clock_trusted: bool
    # Time since the reservation cache last synced with central; None = never.
    cache_age: timedelta | None


@dataclass(frozen=True, slots=True)
class Decision:
    granted: bool
    reason: Reason
    reservation_id: str | None = None
    unlock_seconds: float = 0.0
    # For TOO_EARLY: when the door will admit this reservation.
    opens_at: datetime | None = None
    # For OTHER_DOOR: the door the reservation is for.
    other_door: str | None = None
    # True when the decision was made from a stale cache (policy allowed it).
    stale_cache: bool = False


def cache_is_stale(state: DeviceState, policy: Policy) -> bool:
    return state.cache_age is None or state.cache_age > policy.stale_after


def decide(
    door: str,
    candidates: Iterable[Reservation],
    state: DeviceState,
    policy: Policy,
    *,
    is_staff: bool = False,
) -> Decision:
    """Decide for one presented credential (or code) at ``door``.

    ``candidates`` are the reservations held for this credential or code, on
    any door; the caller does the lookup. Staff credentials open at any time
    (they are how people get in when the clock or cache cannot be trusted).
    """
    stale = cache_is_stale(state, policy)
    unlock = min(policy.unlock_seconds, policy.max_unlock_seconds)
    if is_staff:
        return Decision(True, Reason.STAFF, unlock_seconds=unlock, stale_cache=stale)
    if not state.clock_trusted and policy.deny_on_untrusted_clock:
        return Decision(False, Reason.CLOCK_UNTRUSTED, stale_cache=stale)
    if stale and policy.deny_on_stale_cache:
        return Decision(False, Reason.STALE_CACHE, stale_cache=True)
    decision = _by_reservations(door, list(candidates), state.now, policy, unlock)
    return replace(decision, stale_cache=stale)


def _by_reservations(
    door: str, candidates: list[Reservation], now: datetime, policy: Policy, unlock: float
) -> Decision:
    if not candidates:
        return Decision(False, Reason.NOT_REGISTERED)
    active = [r for r in candidates if not r.cancelled]
    covering = [r for r in active if _admits(r, now, policy)]
    here = [r for r in covering if r.door == door]
    if here:
        # Several may overlap: take the one that lasts longest.
        best = max(here, key=lambda r: r.ends_at)
        return Decision(True, Reason.RESERVATION, best.id, unlock)
    if covering:
        return Decision(False, Reason.OTHER_DOOR, covering[0].id, other_door=covering[0].door)
    upcoming = sorted(
        (r for r in active if r.door == door and now < r.starts_at - policy.early_entry),
        key=lambda r: r.starts_at,
    )
    if upcoming:
        first = upcoming[0]
        return Decision(
            False, Reason.TOO_EARLY, first.id, opens_at=first.starts_at - policy.early_entry
        )
    if active:
        latest = max(active, key=lambda r: r.ends_at)
        return Decision(False, Reason.ENDED, latest.id)
    return Decision(False, Reason.CANCELLED, candidates[0].id)


def _admits(reservation: Reservation, now: datetime, policy: Policy) -> bool:
    return (
        reservation.starts_at - policy.early_entry <= now < reservation.ends_at + policy.late_exit
    )


@dataclass(frozen=True, slots=True)
class CodeAttempts:
    """Wrong reservation codes at one keypad, and the lockout they cause.

    Immutable: each method returns the next state, so the terminal keeps one
    value and tests need no clock.
    """

    failures: int = 0
    locked_until: datetime | None = None

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def after_failure(self, now: datetime, policy: Policy) -> CodeAttempts:
        if self.locked(now):
            return self
        failures = self.failures + 1
        if failures >= policy.code_max_attempts:
            return CodeAttempts(0, now + policy.code_lockout)
        return CodeAttempts(failures, None)

    def after_success(self) -> CodeAttempts:
        return CodeAttempts()


def decide_code(
    door: str,
    candidates: Iterable[Reservation],
    state: DeviceState,
    policy: Policy,
    attempts: CodeAttempts,
) -> tuple[Decision, CodeAttempts]:
    """Decide for a typed reservation code, with lockout after repeated failures.

    A locked keypad denies without looking at the code, so guessing while
    locked reveals nothing. Only "no such code" counts as a failure: a right
    code at the wrong time is not a guess.
    """
    if attempts.locked(state.now):
        return Decision(False, Reason.CODE_LOCKED, opens_at=attempts.locked_until), attempts
    decision = decide(door, candidates, state, policy)
    if decision.reason == Reason.NOT_REGISTERED:
        following = attempts.after_failure(state.now, policy)
        if following.locked(state.now):
            return Decision(False, Reason.CODE_LOCKED, opens_at=following.locked_until), following
        return decision, following
    if decision.granted:
        return decision, attempts.after_success()
    return decision, attempts


def policy_for_door(config: DeviceConfig, door_id: str) -> Policy:
    """The decision policy for one door, from the device configuration."""
    door = config.door(door_id)
    p = config.policy
    return Policy(
        early_entry=timedelta(minutes=p.early_entry_minutes),
        late_exit=timedelta(minutes=p.late_exit_minutes),
        stale_after=timedelta(minutes=p.stale_cache_minutes),
        deny_on_stale_cache=p.on_stale_cache == "deny",
        deny_on_untrusted_clock=p.on_untrusted_clock == "deny",
        unlock_seconds=door.unlock_seconds or config.lock.default_unlock_seconds,
        max_unlock_seconds=config.lock.max_unlock_seconds,
        code_max_attempts=p.code_max_attempts,
        code_lockout=timedelta(minutes=p.code_lockout_minutes),
    )
