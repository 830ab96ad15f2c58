"""Per-device seq tracking, pure logic (no I/O).

A device numbers its events 1, 2, 3, ... . Central keeps, per device, the
highest seq below which everything has arrived (``contiguous``), the highest
seq seen (``max_seq``) and the missing ranges in between (``gaps``). Shared
subscriptions deliver a device's batches to several workers in any order, so a
gap can be transient (the other worker has not committed yet) or real (the
device lost or skipped events); a gap that stays is what operations look at.

At most ``max_ranges`` ranges are kept: beyond that the two last ranges merge
(the report then over-states what is missing; it never hides a gap).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

Range = tuple[int, int]


@dataclass(frozen=True)
class SeqState:
    contiguous: int = 0
    max_seq: int = 0
    gaps: tuple[Range, ...] = ()
    total: int = 0


@dataclass(frozen=True)
class SeqUpdate:
    state: SeqState
    opened: list[Range] = field(default_factory=list)
    closed: int = 0


def advance(state: SeqState, new_seqs: Iterable[int], max_ranges: int = 100) -> SeqUpdate:
    """Account for newly stored seqs; returns the new state and gaps opened."""
    gaps = list(state.gaps)
    top = state.max_seq
    opened: list[Range] = []
    closed = 0
    total = state.total
    for seq in sorted(set(new_seqs)):
        total += 1
        if seq > top:
            if seq > top + 1:
                gap = (top + 1, seq - 1)
                gaps.append(gap)
                opened.append(gap)
            top = seq
        elif _was_missing(gaps, seq):
            gaps = _remove(gaps, seq)
            closed += 1
    while len(gaps) > max_ranges:
        (a, _), (_, d) = gaps[-2], gaps[-1]
        gaps[-2:] = [(a, d)]
    contiguous = gaps[0][0] - 1 if gaps else top
    return SeqUpdate(SeqState(contiguous, top, tuple(gaps), total), opened, closed)


def missing_count(state: SeqState) -> int:
    return sum(b - a + 1 for a, b in state.gaps)


def _was_missing(gaps: Iterable[Range], seq: int) -> bool:
    return any(a <= seq <= b for a, b in gaps)


def _remove(gaps: list[Range], seq: int) -> list[Range]:
    out: list[Range] = []
    for a, b in gaps:
        if a <= seq <= b:
            if a < seq:
                out.append((a, seq - 1))
            if seq < b:
                out.append((seq + 1, b))
        else:
            out.append((a, b))
    return out
