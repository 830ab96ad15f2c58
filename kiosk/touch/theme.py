"""Colours, sizes and fonts of the touchscreen, with their accessibility rules.

Colours are checked by ``tests/unit/test_ui_theme.py``: text at least 4.5:1
against its background, buttons at least 3:1 against the page (WCAG 2.x
contrast ratio); the high-contrast palette at least 7:1. Primary and
secondary buttons differ by shape (filled vs outlined), results by words and
symbols, never by colour alone.

Two palettes (:data:`STANDARD`, :data:`HIGH_CONTRAST`): the person at the
screen switches with the "High contrast" control; the ``.kv`` rules read the
active one through ``app.view.c_*`` (:class:`kiosk.touch.view.TouchView`),
never these constants, so the switch repaints every screen at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RGB = tuple[float, float, float]


def hex_rgb(value: str) -> RGB:
    value = value.lstrip("#")
    r, g, b = (int(value[i : i + 2], 16) / 255 for i in (0, 2, 4))
    return (r, g, b)


PAGE = hex_rgb("#FFFFFF")
TEXT = hex_rgb("#1A1A1C")
TEXT_MUTED = hex_rgb("#4D4D4D")
PRIMARY = hex_rgb("#0031D8")  # Digital Agency blue
ON_PRIMARY = hex_rgb("#FFFFFF")
SUCCESS = hex_rgb("#115A36")
DANGER = hex_rgb("#AE0008")
NOTICE_BG = hex_rgb("#FFF4D6")


@dataclass(frozen=True)
class Palette:
    """The colours of one theme; every ``.kv`` colour is one of these."""

    page: RGB
    text: RGB
    text_muted: RGB
    primary: RGB  # filled buttons, outlines, symbols
    on_primary: RGB  # text on a filled button
    success: RGB
    danger: RGB
    notice_bg: RGB  # the idle countdown banner
    focus: RGB  # reserved for a focus ring (keyboard or tactile keypad)

    def text_pairs(self) -> list[tuple[str, RGB, RGB]]:
        """(what, foreground, background) of every text the screens draw."""
        return [
            ("text", self.text, self.page), ("muted", self.text_muted, self.page),
            ("on_primary", self.on_primary, self.primary), ("primary", self.primary, self.page),
            ("success", self.success, self.page), ("danger", self.danger, self.page),
            ("banner", self.text, self.notice_bg),
        ]  # fmt: skip


STANDARD = Palette(
    page=PAGE, text=TEXT, text_muted=TEXT_MUTED, primary=PRIMARY, on_primary=ON_PRIMARY,
    success=SUCCESS, danger=DANGER, notice_bg=NOTICE_BG, focus=hex_rgb("#E65100"),
)  # fmt: skip
# White and yellow on black; every text pair at least 7:1 (WCAG AAA).
HIGH_CONTRAST = Palette(
    page=hex_rgb("#000000"), text=hex_rgb("#FFFFFF"), text_muted=hex_rgb("#E6E6E6"),
    primary=hex_rgb("#FFE600"), on_primary=hex_rgb("#000000"), success=hex_rgb("#7CFF9B"),
    danger=hex_rgb("#FF9C9C"), notice_bg=hex_rgb("#1F1F1F"), focus=hex_rgb("#00E5FF"),
)  # fmt: skip


def palette(high_contrast: bool) -> Palette:
    return HIGH_CONTRAST if high_contrast else STANDARD


# Touch targets: at least 15 mm with 3 mm gaps (kiosk-ux.md §2.3).
TARGET_MM = 15.0
GAP_MM = 3.0
# Text sizes in mm of cap height-ish (sp at 160 dpi would vary by panel).
TEXT_MM = {"small": 4.0, "normal": 5.0, "title": 8.0, "huge": 14.0}
LARGE_TEXT_SCALE = 1.35
# A panel shorter than this (a 7" one) gets smaller titles and headlines;
# body text and buttons keep their size.
COMPACT_HEIGHT_MM = 110.0
COMPACT_TEXT_MM = {**TEXT_MM, "title": 6.0, "huge": 9.0}

FONT_DIR = Path("/usr/share/fonts/opentype/noto")
FONT_REGULAR = FONT_DIR / "NotoSansCJK-Regular.ttc"
FONT_BOLD = FONT_DIR / "NotoSansCJK-Bold.ttc"


def relative_luminance(rgb: RGB) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: RGB, b: RGB) -> float:
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def rgba(rgb: RGB, alpha: float = 1.0) -> tuple[float, float, float, float]:
    return (*rgb, alpha)
