"""The displays the touchscreens are laid out for (pure data, no Kivy).

Sizes are in millimetres on the glass (``kivy.metrics.mm``), so a layout
depends on the panel's resolution *and* its pixel density. Kivy reads the
density once, at process start, from ``KIVY_DPI`` (:meth:`DisplayProfile.env`);
the screen-matrix test (``tests/e2e/test_screen_matrix.py``) runs one Kivy
process per profile under Xvfb at that size and density and checks every
screen of both touchscreens and card enrolment on it.

A layout asks :attr:`DisplayProfile.wide`-style questions of the live window
(``app.view.wide``), not of this table: the table is what is tested and
documented, the window is what is there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Wider than this (width / height) puts a keypad beside its explanation.
WIDE_RATIO = 1.3


@dataclass(frozen=True)
class DisplayProfile:
    name: str
    width: int  # pixels
    height: int
    diagonal_in: float
    description: str

    @property
    def dpi(self) -> float:
        """Pixels per inch on the glass (square pixels)."""
        return math.hypot(self.width, self.height) / self.diagonal_in

    @property
    def width_mm(self) -> float:
        return self.width / self.dpi * 25.4

    @property
    def height_mm(self) -> float:
        return self.height / self.dpi * 25.4

    @property
    def wide(self) -> bool:
        return is_wide(self.width, self.height)

    def env(self) -> dict[str, str]:
        """Environment that makes Kivy's ``mm()`` match this panel."""
        return {"KIVY_DPI": f"{self.dpi:.1f}"}


def is_wide(width: float, height: float) -> bool:
    return height > 0 and width / height >= WIDE_RATIO


PROFILES: tuple[DisplayProfile, ...] = (
    DisplayProfile("pi7", 800, 480, 7.0, 'Raspberry Pi Touch Display, 7" (about 133 dpi)'),
    DisplayProfile("tab10", 1280, 800, 10.1, '10.1" panel (about 149 dpi)'),
    DisplayProfile("fhd22", 1920, 1080, 21.5, '21.5" landscape monitor (about 102 dpi)'),
    DisplayProfile("fhd22p", 1080, 1920, 21.5, '21.5" portrait monitor (about 102 dpi)'),
)
# The panel of the known 800x600 layout bug (PIN keypad under the idle
# banner); checked too, at Kivy's default density.
SVGA = DisplayProfile("svga", 800, 600, 10.4, '800x600, 10.4" (about 96 dpi)')


def profile(name: str) -> DisplayProfile:
    for candidate in (*PROFILES, SVGA):
        if candidate.name == name:
            return candidate
    raise KeyError(f"no display profile {name!r}")
