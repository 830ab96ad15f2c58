"""The agent's ack pacing (RFC 6298 timer, Karn's rule, window back to one
after a timeout) and the reservation re-requests' backoff."""

from __future__ import annotations

import random

import pytest

from sync.pacing import CAP_FACTOR, AckPacer, jittered


def test_pacer_waits_the_configured_floor_until_it_measures() -> None:
    pacer = AckPacer(20.0, max_window=4)
    assert pacer.timeout == 20.0 and pacer.window == 4
    for _ in range(50):
        pacer.acked(0.1)  # a quick central: the floor still holds
    assert pacer.timeout == 20.0
    assert pacer.smoothed_rtt == pytest.approx(0.1)


def test_pacer_timeout_follows_a_slow_central() -> None:
    pacer = AckPacer(20.0, max_window=4)
    for _ in range(30):
        pacer.acked(30.0)
    assert pacer.timeout > 30.0  # acks taking 30 s no longer look lost
    for _ in range(200):
        pacer.acked(0.2)
    assert pacer.timeout == 20.0  # and back to the floor once central is quick again


def test_pacer_timeout_doubles_up_to_the_cap_and_shrinks_the_window() -> None:
    pacer = AckPacer(10.0, max_window=8)
    seen = []
    for _ in range(6):
        pacer.expired()
        seen.append(pacer.timeout)
    assert seen == [20.0, 40.0, 80.0, 80.0, 80.0, 80.0]
    assert pacer.cap == 10.0 * CAP_FACTOR
    assert pacer.window == 1 and pacer.timeouts == 6


def test_pacer_ignores_round_trips_of_resent_batches() -> None:
    pacer = AckPacer(10.0, max_window=3)
    pacer.expired()
    assert pacer.window == 1
    pacer.acked(None)  # Karn: an ack after a resend measures nothing
    assert pacer.timeout == 20.0 and pacer.window == 2
    pacer.acked(0.5)  # a batch sent once: the backoff ends
    assert pacer.timeout == 10.0
    assert pacer.window == 3
    pacer.acked(0.5)
    assert pacer.window == 3  # never past the configured window


def test_jittered_spreads_within_the_bounds() -> None:
    rng = random.Random(3)
    values = [jittered(10.0, rng) for _ in range(200)]
    assert all(8.0 <= v <= 12.0 for v in values)
    assert max(values) - min(values) > 2.0
