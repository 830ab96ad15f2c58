"""Accessibility rules of the touchscreen theme and the session view model."""

from __future__ import annotations

from kiosk.touch import theme


def test_ui_theme_text_contrast_at_least_4_5() -> None:
    pairs = [
        (theme.TEXT, theme.PAGE), (theme.TEXT_MUTED, theme.PAGE), (theme.ON_PRIMARY, theme.PRIMARY),
        (theme.SUCCESS, theme.PAGE), (theme.DANGER, theme.PAGE), (theme.TEXT, theme.NOTICE_BG),
        (theme.PRIMARY, theme.PAGE),
    ]  # fmt: skip
    for fg, bg in pairs:
        assert theme.contrast_ratio(fg, bg) >= 4.5, (fg, bg)


def test_ui_theme_buttons_stand_out_and_targets_big() -> None:
    assert theme.contrast_ratio(theme.PRIMARY, theme.PAGE) >= 3.0
    assert theme.TARGET_MM >= 15.0
    assert theme.contrast_ratio((1, 1, 1), (0, 0, 0)) == 21.0


def test_ui_theme_high_contrast_palette_at_least_7_to_1() -> None:
    for what, fg, bg in theme.HIGH_CONTRAST.text_pairs():
        assert theme.contrast_ratio(fg, bg) >= 7.0, what
    assert theme.contrast_ratio(theme.HIGH_CONTRAST.primary, theme.HIGH_CONTRAST.page) >= 3.0


def test_ui_theme_standard_palette_every_text_pair_at_least_4_5() -> None:
    for what, fg, bg in theme.STANDARD.text_pairs():
        assert theme.contrast_ratio(fg, bg) >= 4.5, what
    assert theme.palette(True) is theme.HIGH_CONTRAST
    assert theme.palette(False) is theme.STANDARD
