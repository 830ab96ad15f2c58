"""Facility check-in: one presented credential (or typed code) in, one result
out, with the door unlocked and an event recorded on the way.

The same service serves the headless door terminal and the touchscreen.
Hardware and data sit behind small ports
(:class:`~kiosk.checkin.ports.LockPort`,
:class:`~kiosk.checkin.ports.ReservationSource`), so the service is tested with fakes and run
with the real lock controller client and the device store. Nothing here
waits on the network: decisions use the local reservation cache only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from contracts.reservations_hash import code_hash as reservation_code_hash
from kiosk.checkin.access import (
    CodeAttempts,
    Decision,
    DeviceState,
    Policy,
    Reason,
    Reservation,
    decide,
    decide_code,
)
from kiosk.checkin.ports import LockdownSource, LockPort, ReservationSource
from kiosk.errors import DoorInLockdown, LockUnavailable
from sync.errors import SyncError
from sync.outbox import Outbox

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    """What the person is told (one result screen each)."""

    GRANTED = "granted"
    DENIED = "denied"
    UNKNOWN_CARD = "unknown_card"
    UNREADABLE_CARD = "unreadable_card"
    LOCK_UNAVAILABLE = "lock_unavailable"
    LOCKDOWN = "lockdown"  # staff closed the door from the office: it stays locked


@dataclass(frozen=True, slots=True)
class CheckinResult:
    outcome: Outcome
    door: str
    decision: Decision | None = None
    unlocked_seconds: float = 0.0
    via: str = "card"  # or "code"

    @property
    def reason(self) -> str:
        return self.decision.reason.value if self.decision else self.outcome.value


@dataclass
class CheckinService:
    """Decides, unlocks and records for one door."""

    door: str
    facility: str
    policy: Policy
    reservations: ReservationSource
    lock: LockPort
    outbox: Outbox
    code_key: bytes
    now: Callable[[], datetime]
    clock_trusted: Callable[[], bool]
    staff_refs: frozenset[str] = frozenset()
    attempts: CodeAttempts = field(default_factory=CodeAttempts)
    # What the attract screen reads to say the entrance is closed before
    # anyone taps; None: not known here (lockctl refuses the unlock anyway).
    lockdown: LockdownSource | None = None

    def entrance_closed(self) -> bool:
        """Is this door in lockdown? (False when it cannot be told.)"""
        if self.lockdown is None:
            return False
        try:
            return self.lockdown.closed(self.door)
        except SyncError as exc:
            log.warning("lockdown state unreadable", extra={"door": self.door, "error": str(exc)})
            return False

    def _state(self) -> DeviceState:
        now = self.now()
        return DeviceState(now, self.clock_trusted(), self.reservations.cache_age(now))

    def present_credential(self, ref: str) -> CheckinResult:
        """A card was read and identified; ``ref`` is its opaque reference."""
        state = self._state()
        candidates = self._lookup(lambda: self.reservations.for_credential(ref, state.now))
        decision = decide(
            self.door, candidates, state, self.policy, is_staff=ref in self.staff_refs
        )
        return self._act(decision, via="card", ref=ref)

    def enter_code(self, code: str) -> CheckinResult:
        """A reservation code was typed on the keypad."""
        state = self._state()
        code_hash = reservation_code_hash(self.code_key, self.facility, code)
        candidates = self._lookup(lambda: self.reservations.for_code(code_hash, state.now))
        decision, self.attempts = decide_code(
            self.door, candidates, state, self.policy, self.attempts
        )
        return self._act(decision, via="code", ref=None)

    def card_not_usable(self, readable: bool) -> CheckinResult:
        """A card that is not a member card or My Number Card, or could not be read."""
        outcome = Outcome.UNKNOWN_CARD if readable else Outcome.UNREADABLE_CARD
        self._record("checkin.denied", {"door": self.door, "reason": outcome.value, "via": "card"})
        return CheckinResult(outcome, self.door)

    def _lookup(self, fetch: Callable[[], list[Reservation]]) -> list[Reservation]:
        try:
            return fetch()
        except (SyncError, ValueError) as exc:
            # A damaged cache must not stop the terminal: decide as "no
            # reservation", say so in the log and keep serving.
            log.error("reservation lookup failed", extra={"door": self.door, "error": str(exc)})
            return []

    def _act(self, decision: Decision, via: str, ref: str | None) -> CheckinResult:
        data: dict[str, object] = {"door": self.door, "reason": decision.reason.value, "via": via}
        if ref is not None:
            data["ref"] = ref
        if decision.reservation_id:
            data["reservation"] = decision.reservation_id
        if decision.stale_cache:
            data["stale_cache"] = True
        if not decision.granted:
            self._record("checkin.denied", data)
            return CheckinResult(Outcome.DENIED, self.door, decision, via=via)
        reason = "staff" if decision.reason is Reason.STAFF else "check-in"
        try:
            seconds = self.lock.unlock(self.door, decision.unlock_seconds, reason, ref or "code")
        except DoorInLockdown:
            log.warning("unlock refused: door in lockdown", extra={"door": self.door})
            self._record("checkin.denied", {**data, "reason": Outcome.LOCKDOWN.value})
            return CheckinResult(Outcome.LOCKDOWN, self.door, decision, via=via)
        except LockUnavailable as exc:
            log.error("lock controller unavailable", extra={"door": self.door, "error": str(exc)})
            self._record("checkin.failed", {**data, "reason": Outcome.LOCK_UNAVAILABLE.value})
            return CheckinResult(Outcome.LOCK_UNAVAILABLE, self.door, decision, via=via)
        self._record("checkin.granted", {**data, "unlock_seconds": seconds})
        return CheckinResult(Outcome.GRANTED, self.door, decision, seconds, via=via)

    def _record(self, type_: str, data: dict[str, object]) -> None:
        try:
            self.outbox.append(type_, data)
        except SyncError as exc:
            # The person has their answer already; a full disk must not turn
            # it into a crash. The log line is the trace of the lost event.
            log.error("event not recorded", extra={"event_type": type_, "error": str(exc)})
