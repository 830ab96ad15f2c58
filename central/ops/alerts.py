"""Fleet alert rules: pure evaluation over device snapshots, on any clock.

Each rule is a condition on one device's latest state. A condition must
hold for the rule's ``fire_after`` before an alert opens, and must stay false
for ``clear_after`` before it resolves, so a value hovering at a threshold
does not flap. The engine keeps per (device, rule) timing state and returns
the transitions (opened / resolved) of one evaluation; storing alerts,
acknowledging them and notifying people happen around it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AlertThresholds(BaseModel):
    """Thresholds (central config ``[alerts]``); durations in seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    offline_after_s: float = Field(default=120, gt=0)
    heartbeat_stale_s: float = Field(default=180, gt=0)
    cpu_temp_c: float = Field(default=75, gt=0, le=150)
    disk_free_mb: float = Field(default=500, ge=0)
    outbox_oldest_s: float = Field(default=900, gt=0)
    reservation_age_s: float = Field(default=3600, gt=0)
    fire_after_s: float = Field(default=60, ge=0)
    clear_after_s: float = Field(default=120, ge=0)


@dataclass(frozen=True, slots=True)
class DeviceSnapshot:
    """What central knows of one device at evaluation time."""

    device: str
    online: bool
    last_seen: datetime | None
    health: dict[str, Any] = field(default_factory=dict)
    health_at: datetime | None = None
    door_alarms: frozenset[str] = frozenset()  # doors held open or forced open now


Condition = Callable[[DeviceSnapshot, datetime, AlertThresholds], str | None]


def _age(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else (now - moment).total_seconds()


def _offline(s: DeviceSnapshot, now: datetime, t: AlertThresholds) -> str | None:
    return None if s.online else "device is offline"


def _stale_heartbeat(s: DeviceSnapshot, now: datetime, t: AlertThresholds) -> str | None:
    age = _age(s.health_at, now)
    if s.online and (age is None or age > t.heartbeat_stale_s):
        return "connected but no health report" + ("" if age is None else f" for {age:.0f} s")
    return None


def _metric(key: str, test: Callable[[float, AlertThresholds], bool], text: str) -> Condition:
    def condition(s: DeviceSnapshot, now: datetime, t: AlertThresholds) -> str | None:
        value = s.health.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return text.format(value=value) if test(float(value), t) else None

    return condition


def _flag(key: str, bad: object, text: str) -> Condition:
    def condition(s: DeviceSnapshot, now: datetime, t: AlertThresholds) -> str | None:
        return text if key in s.health and s.health[key] == bad else None

    return condition


def _printer(s: DeviceSnapshot, now: datetime, t: AlertThresholds) -> str | None:
    state = s.health.get("printer")
    return (
        f"printer: {state}" if isinstance(state, str) and state not in ("", "ok", "idle") else None
    )


def _doors(s: DeviceSnapshot, now: datetime, t: AlertThresholds) -> str | None:
    return f"door alarm: {', '.join(sorted(s.door_alarms))}" if s.door_alarms else None


RULES: dict[str, Condition] = {
    "offline": _offline,
    "heartbeat_stale": _stale_heartbeat,
    "cpu_hot": _metric("cpu_temp_c", lambda v, t: v >= t.cpu_temp_c, "CPU at {value:.0f} °C"),
    "throttled": _metric("throttled", lambda v, t: int(v) & 0xF != 0, "throttled (0x{value:.0f})"),
    "disk_low": _metric("disk_free_mb", lambda v, t: v < t.disk_free_mb, "{value:.0f} MB free"),
    "disk_read_only": _flag("disk_read_only", True, "disk is read-only"),
    "store_full": _flag("store_full", True, "disk full: new events refused"),
    "outbox_backlog": _metric(
        "outbox_oldest_age_s",
        lambda v, t: v > t.outbox_oldest_s,
        "oldest unsent event {value:.0f} s",
    ),
    "reservations_stale": _metric(
        "reservation_age_s", lambda v, t: v > t.reservation_age_s, "reservations {value:.0f} s old"
    ),
    "reader_missing": _flag("reader_present", False, "card reader missing"),
    "door_alarm": _doors,
    "printer_error": _printer,
    "clock_unsynchronised": _flag("clock_synchronised", False, "clock not synchronised"),
}
# A door alarm is never noise: it opens at once.
IMMEDIATE = frozenset({"door_alarm"})


@dataclass
class _RuleState:
    true_since: datetime | None = None
    false_since: datetime | None = None
    firing: bool = False


@dataclass(frozen=True, slots=True)
class Transition:
    device: str
    rule: str
    opened: bool  # True: the alert opens; False: it resolves
    detail: str
    at: datetime


@dataclass
class AlertEngine:
    thresholds: AlertThresholds = field(default_factory=AlertThresholds)
    _state: dict[tuple[str, str], _RuleState] = field(default_factory=dict)

    def firing(self) -> set[tuple[str, str]]:
        return {key for key, st in self._state.items() if st.firing}

    def restore(self, firing: Iterable[tuple[str, str]], since: datetime) -> None:
        """Start from alerts already open (after a restart)."""
        for key in firing:
            self._state[key] = _RuleState(true_since=since, firing=True)

    def evaluate(self, snapshots: Iterable[DeviceSnapshot], now: datetime) -> list[Transition]:
        transitions: list[Transition] = []
        for snapshot in snapshots:
            for rule, condition in RULES.items():
                detail = condition(snapshot, now, self.thresholds)
                change = self._step((snapshot.device, rule), detail, now)
                if change is not None:
                    transitions.append(
                        Transition(snapshot.device, rule, change, detail or "recovered", now)
                    )
        return transitions

    def _fire_after(self, rule: str) -> float:
        if rule in IMMEDIATE:
            return 0.0
        if rule == "offline":
            return self.thresholds.offline_after_s
        return self.thresholds.fire_after_s

    def _step(self, key: tuple[str, str], detail: str | None, now: datetime) -> bool | None:
        state = self._state.setdefault(key, _RuleState())
        fire_after = timedelta(seconds=self._fire_after(key[1]))
        clear_after = timedelta(seconds=self.thresholds.clear_after_s)
        if detail is not None:
            state.false_since = None
            state.true_since = state.true_since or now
            if not state.firing and now - state.true_since >= fire_after:
                state.firing = True
                return True
            return None
        state.true_since = None
        if not state.firing:
            return None
        state.false_since = state.false_since or now
        if now - state.false_since >= clear_after:
            state.firing = False
            state.false_since = None
            return False
        return None
