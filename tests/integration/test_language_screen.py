"""Kivy under Xvfb: every language's text renders in its font (not as tofu,
Nepali shaped by HarfBuzz), and the language screen shows all languages at
800x480 (Raspberry Pi Touch Display) and 1080x1920 portrait with targets of
at least theme.TARGET_MM (tests/integration/kivy_language_probe.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from foundation.languages import LANGUAGES
from kiosk.touch.theme import LARGE_TEXT_SCALE, TARGET_MM
from tests.conftest import start_service
from tests.harness.xvfb import Xvfb

PROBE = Path(__file__).resolve().parent / "kivy_language_probe.py"


@pytest.fixture(scope="module")
def tall_xvfb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Xvfb]:
    """A screen that holds a 1080x1920 portrait window."""
    server = Xvfb(tmp_path_factory.mktemp("xvfb-tall"), width=1920, height=1920)
    start_service("Xvfb", server.start)
    yield server
    server.stop()


def probe(env: dict[str, str], *args: str, dpi: int | None = None) -> dict[str, Any]:
    env = {**env, **({"KIVY_DPI": str(dpi)} if dpi else {})}
    done = subprocess.run(
        [sys.executable, str(PROBE), *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def test_language_fonts_render_every_language(kivy_env: dict[str, str]) -> None:
    report = probe(kivy_env, "fonts")
    # The check can fail: Nepali in the Latin font is only tofu.
    assert report["_control"]["equals_tofu"] is True
    # HarfBuzz is in Kivy's SDL2_ttf: the Devanagari script changes the shapes.
    assert report["_deva_shaping"]["differs"] is True
    assert report["_view_fonts"] == {
        language.code: [language.font, language.script or "Latn"] for language in LANGUAGES
    }
    broken = {
        language.code: sample["text"]
        for language in LANGUAGES
        for sample in report[language.code]
        if not (sample["ink"] > 0 and sample["differs_from_tofu"])
    }
    assert not broken, f"no text or tofu only (or no translation of 'Language'): {broken}"


@pytest.mark.parametrize(
    ("width", "height", "dpi", "scale"),
    [
        (800, 480, 132, 1.0),  # 7" Raspberry Pi Touch Display
        (800, 480, 132, LARGE_TEXT_SCALE),  # the same with "Larger text"
        (1080, 1920, 160, 1.0),  # a 13.8" portrait panel
        (1080, 1920, 160, LARGE_TEXT_SCALE),
    ],
)
def test_language_screen_shows_every_language_with_large_targets(
    kivy_env: dict[str, str],
    tall_xvfb: Xvfb,
    artifacts_dir: Path,
    width: int,
    height: int,
    dpi: int,
    scale: float,
) -> None:
    shot = artifacts_dir / "languages" / f"language-{width}x{height}-{scale}.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    args = ("layout", str(width), str(height), str(shot), str(scale))
    report = probe({**kivy_env, **tall_xvfb.env}, *args, dpi=dpi)
    assert report["window_px"] == [width, height]
    window_w, window_h = report["window"]
    buttons = report["buttons"]
    assert [b["code"] for b in buttons] == [language.code for language in LANGUAGES]
    fonts = {language.code: language.font for language in LANGUAGES}
    for b in buttons:
        where = f"{b['code']} at {width}x{height}: {b}"
        assert b["font"] == fonts[b["code"]], where  # its own font, whatever the person's
        assert b["w"] >= TARGET_MM and b["h"] >= TARGET_MM, where
        assert b["x"] >= 0 and b["y"] >= 0, where
        assert b["x"] + b["w"] <= window_w + 0.01 and b["y"] + b["h"] <= window_h + 0.01, where
        assert b["text_h"] <= b["h"] and b["text_w"] <= b["w"], where  # the name fits
    for i, a in enumerate(buttons):
        for b in buttons[i + 1 :]:
            apart = (
                a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"]
                or a["y"] + a["h"] <= b["y"] or b["y"] + b["h"] <= a["y"]
            )  # fmt: skip
            assert apart, f"{a['code']} overlaps {b['code']}"
