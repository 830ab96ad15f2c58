"""Buzzer/LED patterns that tell a person at a door terminal what happened.

Pure timing: a pattern is a list of (buzzer, led, seconds) steps, and
:func:`indicators_at` says what the two outputs show ``elapsed`` seconds
after it started (``None`` once it is over). The control loop samples it on
every pass, so nothing sleeps and a pattern never delays a relock.
Each pattern differs in rhythm, not only in colour: one long tone for
"granted", three short for "denied", a long-short-long for "error".
"""

from __future__ import annotations

Step = tuple[bool, bool, float]

PATTERNS: dict[str, tuple[Step, ...]] = {
    # One 0.3 s tone, LED on for 2 s.
    "granted": ((True, True, 0.3), (False, True, 1.7)),
    # Three 0.12 s tones with the LED blinking along.
    "denied": tuple(step for _ in range(3) for step in ((True, True, 0.12), (False, False, 0.12))),
    # Long, short, long: something is wrong, ask staff.
    "error": (
        (True, True, 0.6),
        (False, False, 0.15),
        (True, True, 0.15),
        (False, False, 0.15),
        (True, True, 0.6),
    ),
}


def indicators_at(pattern: str, elapsed: float) -> tuple[bool, bool] | None:
    """(buzzer, led) for ``pattern`` at ``elapsed`` seconds, or None when done."""
    if elapsed < 0:
        return (False, False)
    for buzzer, led, seconds in PATTERNS[pattern]:
        if elapsed < seconds:
            return (buzzer, led)
        elapsed -= seconds
    return None


def duration(pattern: str) -> float:
    return sum(seconds for _, _, seconds in PATTERNS[pattern])
