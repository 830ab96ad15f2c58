"""Colours, sizes and fonts of the touchscreen, with their accessibility rules.

Colours are checked by ``tests/unit/test_ui_theme.py``: text at least 4.5:1
against its background, buttons at least 3:1 against the page (WCAG 2.x
contrast ratio). Primary and secondary buttons differ by shape (filled vs
outlined), results by words and symbols, never by colour alone.
"""

from __future__ import annotations

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

# Touch targets: at least 15 mm with 3 mm gaps (kiosk-ux.md §2.3).
TARGET_MM = 15.0
GAP_MM = 3.0
# Text sizes in mm of cap height-ish (sp at 160 dpi would vary by panel).
TEXT_MM = {"normal": 5.0, "title": 8.0, "huge": 14.0}
LARGE_TEXT_SCALE = 1.35

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
