"""The display profiles the touchscreens are laid out and tested for."""

from __future__ import annotations

import pytest

from kiosk.touch.profiles import PROFILES, SVGA, is_wide, profile


def test_ui_profiles_densities_match_the_panels() -> None:
    dpi = {p.name: round(p.dpi) for p in PROFILES}
    assert dpi == {"pi7": 133, "tab10": 149, "fhd22": 102, "fhd22p": 102}
    assert profile("pi7").env() == {"KIVY_DPI": "133.3"}
    assert 150 < profile("pi7").width_mm < 155 and 90 < profile("pi7").height_mm < 93


def test_ui_profiles_portrait_stacks_and_landscape_is_wide() -> None:
    assert [p.wide for p in PROFILES] == [True, True, True, False]
    assert SVGA.wide  # 4:3 is wide enough for the keypad beside the text
    assert is_wide(1280, 800) and not is_wide(800, 800) and not is_wide(10, 0)
    with pytest.raises(KeyError):
        profile("vga")
