"""The fleet soak's recovery times: when the outboxes are steady again."""

from __future__ import annotations

from bench.fleet_report import RECOVERED_OUTBOX, Fault, recovery_times


def samples(*pairs: tuple[float, int]) -> list[dict[str, object]]:
    return [{"t": t, "outbox": waiting} for t, waiting in pairs]


def test_recovery_times_from_the_start_and_each_fault_end() -> None:
    run = samples((5, 900), (10, 400), (15, 20), (20, 10), (25, 600), (30, 700), (35, 30),
                  (40, 15), (45, 20))  # fmt: skip
    times = recovery_times(run, [Fault("broker_restart", 22, 27)])
    assert times == {"first connection": 15, "broker_restart": 8}


def test_recovery_times_never_back_counts_to_the_end() -> None:
    run = samples(*((t, 5) for t in range(5, 55, 5)), (55, 5_000), (60, 6_000), (65, 7_000))
    times = recovery_times(run, [Fault("device_cut_off", 52, 54)])
    assert times["first connection"] == 5
    assert times["device_cut_off"] == 65 - 54


def test_recovery_level_follows_a_busy_fleets_median() -> None:
    busy = 3 * RECOVERED_OUTBOX  # a fleet that always has this much waiting
    run = samples(*((t, busy) for t in range(5, 60, 5)), (60, 5 * busy), (65, busy))
    assert recovery_times(run, [Fault("ingest_kill", 58, 59)])["ingest_kill"] == 65 - 59
    assert recovery_times([], []) == {}
