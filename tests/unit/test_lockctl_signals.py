"""Buzzer/LED patterns: timing of each step, end, and distinct rhythms."""

from __future__ import annotations

import pytest

from lockctl.signals import PATTERNS, duration, indicators_at


def test_signals_granted_timeline() -> None:
    assert indicators_at("granted", 0.0) == (True, True)
    assert indicators_at("granted", 0.31) == (False, True)
    assert indicators_at("granted", 1.99) == (False, True)
    assert indicators_at("granted", 2.0) is None


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_signals_every_pattern_ends_and_beeps(pattern: str) -> None:
    assert indicators_at(pattern, duration(pattern) + 0.01) is None
    beeps = [indicators_at(pattern, t / 100) for t in range(int(duration(pattern) * 100))]
    assert any(b and b[0] for b in beeps)


def test_signals_patterns_differ_in_rhythm_not_only_colour() -> None:
    rhythms = {name: tuple(buzzer for buzzer, _, _ in steps) for name, steps in PATTERNS.items()}
    assert len(set(rhythms.values())) == len(rhythms)
