"""The door state machine: pure decision logic, no I/O, on an injected clock.

One :class:`DoorMachine` per door. The daemon feeds it the time (monotonic
seconds) and the *sampled levels* of the door contact and exit button; it
answers with the relay level it wants and the events that happened. Nothing
here reads a pin, sleeps or starts a thread, so every timer boundary is unit
tested on a fake clock.

States (``DoorMachine.state``)::

    locked       relay off, door closed (or no contact)
    unlocked     relay on until an absolute deadline, door closed
    open         door open after an authorised unlock (or within the grace
                 period after a relock)
    held_open    authorised open for longer than held_open_seconds (alarm)
    forced_open  the contact opened while locked, outside the grace (alarm)

Rules:

* A grant sets an absolute deadline ``now + min(seconds, max_unlock)``. A new
  grant while unlocked only ever moves the deadline later, and never beyond
  ``now + max_unlock``: any request for more is capped.
* At the deadline the relay goes off. With ``relock_on_close`` it goes off
  as soon as the door closes after having been opened during the grant.
* Contact and exit button are *levels*, debounced: a new level counts only
  after it has been stable for the debounce time, and it counts from the
  moment it first appeared. A missed or bounced edge cannot invert the door
  state, because the next stable sample corrects it.
* The exit button (REX) unlocks on a debounced press (not while held), at
  most once per ``exit_button_min_interval_seconds``.
* :meth:`DoorMachine.next_due` is the door's one timer: the earliest moment
  at which something will change without new input.
* Lockdown (a remote ``door.lockdown``): the door relocks at once and every
  requested unlock (check-in, staff, remote) raises
  :class:`~lockctl.errors.DoorLockedDown` until :meth:`DoorMachine.release`;
  the exit button still unlocks it (free egress from inside).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lockctl.errors import DoorLockedDown
from lockctl.lockdown import Lockdown


class DoorState(StrEnum):
    LOCKED = "locked"
    UNLOCKED = "unlocked"
    OPEN = "open"
    HELD_OPEN = "held_open"
    FORCED_OPEN = "forced_open"


class Reason(StrEnum):
    """Why a door was unlocked (the ``reason`` of ``door.unlocked``)."""

    CHECK_IN = "check-in"
    EXIT_BUTTON = "exit_button"
    REMOTE = "remote"
    STAFF = "staff"


# Reasons a socket client may give; exit_button comes only from the button.
REQUEST_REASONS = frozenset({Reason.CHECK_IN, Reason.REMOTE, Reason.STAFF})


class LockReason(StrEnum):
    """Why a door was locked again (the ``reason`` of ``door.locked``)."""

    DEADLINE = "deadline"
    DOOR_CLOSED = "door_closed"
    REQUEST = "request"
    SHUTDOWN = "shutdown"
    LOCKDOWN = "lockdown"


@dataclass(frozen=True, slots=True)
class DoorTimings:
    """Per-door timing rules, all in seconds."""

    max_unlock_seconds: float = 30.0
    exit_button_seconds: float = 5.0
    relock_on_close: bool = True
    held_open_seconds: float = 30.0
    forced_open_grace_seconds: float = 1.0
    contact_debounce_seconds: float = 0.1
    exit_button_debounce_seconds: float = 0.05
    exit_button_min_interval_seconds: float = 1.0


@dataclass(frozen=True, slots=True)
class DoorEvent:
    """Something that happened at a door: an outbox event type and its data."""

    type: str
    data: dict[str, Any]
    at: float  # monotonic seconds


@dataclass(frozen=True, slots=True)
class Grant:
    """The answer to an unlock: the absolute relock deadline (monotonic)."""

    deadline: float
    seconds: float
    capped: bool
    extended: bool


@dataclass(slots=True)
class Debouncer:
    """A level that changes only after being stable for ``stable_for`` seconds."""

    stable_for: float
    stable: bool | None = None
    _candidate: bool | None = None
    _since: float = 0.0

    def sample(self, now: float, level: bool) -> float | None:
        """Feed one sample; returns when the new stable level began, if it changed."""
        if self.stable is None:
            self.stable = self._candidate = level
            self._since = now
            return None
        if level != self._candidate:
            self._candidate = level
            self._since = now
        if self._candidate != self.stable and now - self._since >= self.stable_for:
            self.stable = self._candidate
            return self._since
        return None

    def due(self) -> float | None:
        """When a pending change will settle (if the level stays as it is)."""
        if self.stable is None or self._candidate == self.stable:
            return None
        return self._since + self.stable_for


@dataclass(slots=True)
class DoorMachine:
    """State of one door; see the module docstring for the rules."""

    door: str
    timings: DoorTimings = field(default_factory=DoorTimings)
    deadline: float | None = None
    door_open: bool | None = None
    alarm: DoorState | None = None
    lockdown: Lockdown | None = None
    _unlocked_at: float = 0.0
    _relocked_at: float | None = None
    _opened_in_grant: bool = False
    _open_since: float | None = None
    _last_rex: float | None = None
    _contact: Debouncer = field(init=False)
    _button: Debouncer = field(init=False)
    _events: list[DoorEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._contact = Debouncer(self.timings.contact_debounce_seconds)
        self._button = Debouncer(self.timings.exit_button_debounce_seconds)

    @property
    def relay_on(self) -> bool:
        return self.deadline is not None

    @property
    def state(self) -> DoorState:
        if self.door_open:
            return self.alarm or DoorState.OPEN
        return DoorState.UNLOCKED if self.relay_on else DoorState.LOCKED

    def unlock(
        self,
        now: float,
        seconds: float,
        reason: Reason,
        ref: str | None = None,
        staff_reason: str | None = None,
    ) -> Grant:
        """Grant an unlock; extends (never shortens) a running one, capped.
        Refused (:class:`DoorLockedDown`) in lockdown, unless from the exit button."""
        if not (math.isfinite(seconds) and seconds > 0):
            raise ValueError(f"unlock seconds must be a positive number, not {seconds!r}")
        if self.lockdown is not None and reason is not Reason.EXIT_BUTTON:
            raise DoorLockedDown(self.door)
        capped = seconds > self.timings.max_unlock_seconds
        wanted = now + min(seconds, self.timings.max_unlock_seconds)
        extended = self.deadline is not None
        if self.deadline is None:
            self._unlocked_at = now
            self._opened_in_grant = False
        if self.deadline is None or wanted > self.deadline:
            self.deadline = wanted
        grant = Grant(self.deadline, self.deadline - now, capped, extended)
        data: dict[str, Any] = {
            "door": self.door,
            "reason": str(reason),
            "seconds": round(grant.seconds, 3),
            "capped": capped,
            "extended": extended,
        }
        if ref:
            data["ref"] = ref
        if staff_reason:
            data["staff_reason"] = staff_reason
        self._emit("door.unlocked", now, data)
        return grant

    def start_lockdown(self, now: float, lockdown: Lockdown) -> bool:
        """Lockdown: relock now, refuse requested unlocks from now on.
        False when the door was in lockdown already (its first record stays)."""
        if self.deadline is not None:
            self._relock(now, LockReason.LOCKDOWN)
        if self.lockdown is not None:
            return False
        self.lockdown = lockdown
        data = {"door": self.door, "ref": lockdown.ref, "staff_reason": lockdown.reason}
        self._emit("door.lockdown", now, data)
        return True

    def restore_lockdown(self, now: float, lockdown: Lockdown | None) -> None:
        """The lockdown kept in the store, read at start (no ``door.lockdown``
        event: it began earlier); relocks if the door is unlocked."""
        self.lockdown = lockdown
        if lockdown is not None and self.deadline is not None:
            self._relock(now, LockReason.LOCKDOWN)

    def release(self, now: float, ref: str) -> bool:
        """End a lockdown; False when there was none."""
        if self.lockdown is None:
            return False
        since, self.lockdown = self.lockdown, None
        self._emit("door.released", now, {"door": self.door, "ref": ref, "lockdown_ref": since.ref})
        return True

    def lock(self, now: float, reason: LockReason = LockReason.REQUEST) -> bool:
        """Relock now; returns whether the relay was on."""
        if self.deadline is None:
            return False
        self._relock(now, reason)
        return True

    def step(self, now: float, contact_open: bool | None, button_pressed: bool | None) -> None:
        """Advance to ``now`` with the sampled input levels (None: no such input)."""
        self._check_deadline(now)
        if contact_open is not None:
            changed_at = self._contact.sample(now, contact_open)
            if self.door_open is None:
                self._first_contact(now, contact_open)
            elif changed_at is not None:
                self._contact_changed(now, changed_at, bool(self._contact.stable))
        if button_pressed is not None:
            pressed_at = self._button.sample(now, button_pressed)
            if pressed_at is not None and self._button.stable:
                self._exit_button(now)
        self._check_held_open(now)

    def next_due(self) -> float | None:
        """The door's one timer: the earliest time something changes by itself."""
        candidates = [self.deadline, self._contact.due(), self._button.due()]
        if self.door_open and self.alarm is None and self._open_since is not None:
            candidates.append(self._open_since + self.timings.held_open_seconds)
        times = [t for t in candidates if t is not None]
        return min(times) if times else None

    def drain_events(self) -> list[DoorEvent]:
        events, self._events = self._events, []
        return events

    def snapshot(self, now: float) -> dict[str, Any]:
        return {
            "door": self.door,
            "state": str(self.state),
            "relay_on": self.relay_on,
            "deadline_in": None if self.deadline is None else round(self.deadline - now, 3),
            "door_open": self.door_open,
            "alarm": None if self.alarm is None else str(self.alarm),
            "lockdown": None if self.lockdown is None else _lockdown_view(self.lockdown),
        }

    # -- internals ---------------------------------------------------------

    def _emit(self, type_: str, now: float, data: dict[str, Any]) -> None:
        self._events.append(DoorEvent(type_, data, now))

    def _relock(self, now: float, reason: LockReason) -> None:
        unlocked_for = now - self._unlocked_at
        self.deadline = None
        self._relocked_at = now
        self._emit(
            "door.locked",
            now,
            {"door": self.door, "reason": str(reason), "unlocked_seconds": round(unlocked_for, 3)},
        )

    def _check_deadline(self, now: float) -> None:
        if self.deadline is not None and now >= self.deadline:
            self._relock(now, LockReason.DEADLINE)

    def _first_contact(self, now: float, is_open: bool) -> None:
        # At start we cannot know how the door came to be open: no alarm, but
        # the held-open timer runs from now.
        self.door_open = is_open
        self._open_since = now if is_open else None

    def _authorised_at(self, t: float) -> bool:
        if self.deadline is not None and self._unlocked_at <= t:
            return True
        grace = self.timings.forced_open_grace_seconds
        return self._relocked_at is not None and t <= self._relocked_at + grace

    def _contact_changed(self, now: float, changed_at: float, is_open: bool) -> None:
        self.door_open = is_open
        if is_open:
            self._open_since = changed_at
            authorised = self._authorised_at(changed_at)
            self._emit("door.opened", now, {"door": self.door, "authorised": authorised})
            if authorised:
                self._opened_in_grant = self.relay_on
            else:
                self.alarm = DoorState.FORCED_OPEN
                self._emit("door.forced_open", now, {"door": self.door})
            return
        open_for = changed_at - (self._open_since or changed_at)
        alarm, self.alarm, self._open_since = self.alarm, None, None
        self._emit(
            "door.closed",
            now,
            {
                "door": self.door,
                "open_seconds": round(open_for, 3),
                "alarm": None if alarm is None else str(alarm),
            },
        )
        if self.timings.relock_on_close and self.relay_on and self._opened_in_grant:
            self._relock(now, LockReason.DOOR_CLOSED)

    def _exit_button(self, now: float) -> None:
        interval = self.timings.exit_button_min_interval_seconds
        if self._last_rex is not None and now - self._last_rex < interval:
            return
        self._last_rex = now
        self.unlock(now, self.timings.exit_button_seconds, Reason.EXIT_BUTTON)

    def _check_held_open(self, now: float) -> None:
        if not self.door_open or self.alarm is not None or self._open_since is None:
            return
        if now - self._open_since >= self.timings.held_open_seconds:
            self.alarm = DoorState.HELD_OPEN
            self._emit(
                "door.held_open",
                now,
                {"door": self.door, "open_seconds": round(now - self._open_since, 3)},
            )


def _lockdown_view(lockdown: Lockdown) -> dict[str, str]:
    return {"since": lockdown.since, "ref": lockdown.ref, "reason": lockdown.reason}
