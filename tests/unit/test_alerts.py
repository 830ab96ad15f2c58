"""Alert rules on a fake clock: each fires after its delay and recovers
after the clear delay, without flapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from central.ops.alerts import RULES, AlertEngine, AlertThresholds, DeviceSnapshot

T0 = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
HEALTHY: dict[str, Any] = {
    "cpu_temp_c": 50.0, "throttled": 0, "disk_free_mb": 5000.0, "disk_read_only": False,
    "store_full": False,
    "outbox_oldest_age_s": 0.0, "reservation_age_s": 30.0, "reader_present": True,
    "printer": "ok", "clock_synchronised": True,
}  # fmt: skip


def snap(
    at: datetime, online: bool = True, doors: frozenset[str] = frozenset(), **health: Any
) -> DeviceSnapshot:
    return DeviceSnapshot("dev-a", online, at, {**HEALTHY, **health}, at, doors)


BAD: dict[str, dict[str, Any]] = {
    "cpu_hot": {"cpu_temp_c": 82.0},
    "throttled": {"throttled": 0x50005},
    "disk_low": {"disk_free_mb": 100.0},
    "disk_read_only": {"disk_read_only": True},
    "store_full": {"store_full": True},
    "outbox_backlog": {"outbox_oldest_age_s": 4000.0},
    "reservations_stale": {"reservation_age_s": 7200.0},
    "reader_missing": {"reader_present": False},
    "printer_error": {"printer": "out_of_paper"},
    "clock_unsynchronised": {"clock_synchronised": False},
}


def run(engine: AlertEngine, states: list[DeviceSnapshot]) -> list[tuple[int, str, bool]]:
    out = []
    for i, s in enumerate(states):
        for t in engine.evaluate([s], s.last_seen or T0):
            out.append((i, t.rule, t.opened))
    return out


@pytest.mark.parametrize("rule", sorted(BAD))
def test_alerts_health_rule_fires_after_delay_and_recovers(rule: str) -> None:
    engine = AlertEngine(AlertThresholds(fire_after_s=60, clear_after_s=120))
    minute = [T0 + timedelta(seconds=30 * i) for i in range(12)]
    states = [snap(minute[i], **BAD[rule]) for i in range(3)] + [
        snap(minute[i]) for i in range(3, 12)
    ]
    assert run(engine, states) == [(2, rule, True), (7, rule, False)]


def test_alerts_no_flapping_around_threshold() -> None:
    engine = AlertEngine(AlertThresholds(fire_after_s=60, clear_after_s=120))
    # 74/76 °C alternating every 30 s around a 75 °C threshold: never 60 s hot.
    states = [
        snap(T0 + timedelta(seconds=30 * i), cpu_temp_c=76.0 if i % 2 else 74.0) for i in range(20)
    ]
    assert run(engine, states) == []
    # Once firing, short dips below do not resolve it.
    engine = AlertEngine(AlertThresholds(fire_after_s=60, clear_after_s=120))
    hot = [snap(T0 + timedelta(seconds=30 * i), cpu_temp_c=80.0) for i in range(3)]
    dips = [
        snap(T0 + timedelta(seconds=90 + 30 * i), cpu_temp_c=70.0 if i % 3 == 0 else 80.0)
        for i in range(12)
    ]
    assert run(engine, hot + dips) == [(2, "cpu_hot", True)]


def test_alerts_offline_and_stale_heartbeat() -> None:
    engine = AlertEngine(
        AlertThresholds(offline_after_s=120, heartbeat_stale_s=180, clear_after_s=0)
    )
    offline = [DeviceSnapshot("dev-a", False, T0, {}, T0) for _ in range(1)]
    assert engine.evaluate(offline, T0) == []
    opened = engine.evaluate(offline, T0 + timedelta(seconds=120))
    assert [(t.rule, t.opened) for t in opened] == [("offline", True)]
    silent = DeviceSnapshot("dev-a", True, T0, dict(HEALTHY), T0)
    later = engine.evaluate([silent], T0 + timedelta(seconds=400))
    assert ("offline", False) in [(t.rule, t.opened) for t in later]
    stale = engine.evaluate([silent], T0 + timedelta(seconds=500))
    assert [(t.rule, t.opened) for t in stale] == [("heartbeat_stale", True)]


def test_alerts_door_alarm_immediate_and_wrong_types_ignored() -> None:
    engine = AlertEngine()
    opened = engine.evaluate([snap(T0, doors=frozenset({"room-a"}))], T0)
    assert [(t.rule, t.detail) for t in opened] == [("door_alarm", "door alarm: room-a")]
    weird = snap(T0, cpu_temp_c="hot", disk_free_mb=None, throttled=True)
    assert all(t.rule == "door_alarm" for t in engine.evaluate([weird], T0 + timedelta(hours=1)))


def test_alerts_every_rule_is_tested() -> None:
    assert set(RULES) == set(BAD) | {"offline", "heartbeat_stale", "door_alarm"}
