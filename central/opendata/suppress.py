"""Small-count suppression (秘匿) of one published row, pure.

A count of people's actions below ``min_count`` could single someone out, so:

1. **Contributors.** When fewer than ``min_count`` distinct people (members,
   residents; walk-ins together count as one) are behind a row, every count
   of the row is withheld: 12 bookings by one member are about one member.
2. **Primary.** A count from 1 to ``min_count - 1`` is withheld. Zero is
   published: it names no one.
3. **Secondary.** Where a row holds an identity ``total = a + b`` (bookings
   = checked in + no-shows), one withheld cell could be recomputed from the
   others; so while a group has exactly one withheld cell, its smallest
   published cell is withheld too.
4. **Followers.** A figure computed from the same people as a count (the
   hours of the bookings, of the check-ins) is withheld with that count.

No totals over rows are published anywhere (no facility or city totals),
so nothing withheld can be recomputed across rows either. ``None`` is a
withheld cell (an empty CSV cell).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    """``total`` = the sum of ``parts`` (column names of one row)."""

    total: str
    parts: tuple[str, ...]

    @property
    def cells(self) -> tuple[str, ...]:
        return (self.total, *self.parts)


def withheld_primary(value: int, min_count: int) -> bool:
    return 0 < value < min_count


def suppress_row(
    counts: Mapping[str, int],
    *,
    min_count: int,
    contributors: int,
    identities: Sequence[Identity] = (),
    figures: Mapping[str, float] | None = None,
    follows: Mapping[str, str] | None = None,
) -> dict[str, float | None]:
    """The row as published: ``counts`` (and ``figures``, each following the
    count named in ``follows``) with withheld cells as ``None``."""
    out: dict[str, float | None] = {}
    out.update(counts)
    if contributors < min_count:
        out = dict.fromkeys(counts)
    else:
        for name, value in counts.items():
            if withheld_primary(value, min_count):
                out[name] = None
        _secondary(out, counts, identities)
    for name, figure in (figures or {}).items():
        leader = (follows or {}).get(name)
        out[name] = None if leader is not None and out[leader] is None else figure
    return out


def _secondary(
    out: dict[str, float | None], counts: Mapping[str, int], identities: Sequence[Identity]
) -> None:
    changed = True
    while changed:
        changed = False
        for identity in identities:
            withheld = [c for c in identity.cells if out[c] is None]
            if len(withheld) != 1:
                continue
            shown = [c for c in identity.cells if out[c] is not None]
            smallest = min(shown, key=lambda c: (counts[c], identity.cells.index(c)))
            out[smallest] = None
            changed = True
