"""Run by tests/integration/test_language_screen.py in a Kivy subprocess on
Xvfb; prints one JSON line.

``fonts``: for every registered language, renders its own name and its
translation of "Language" with the font (and HarfBuzz script) the registry
gives it, and a string of the same length made of code points no font has
(what tofu looks like), and reports whether each rendering has ink and
differs from the tofu one; also whether Nepali renders differently with the
Devanagari script than with the Latin default (HarfBuzz shaping in use).

``layout WIDTH HEIGHT [PNG [SCALE]]``: lays out the language screen with
every language at that window size and text scale ("Larger text": 1.35) and
reports each button's size and position in mm and its text's size.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

os.environ.setdefault("KIVY_NO_ARGS", "1")
from kivy.config import Config

if sys.argv[1] == "layout":
    Config.set("graphics", "width", sys.argv[2])
    Config.set("graphics", "height", sys.argv[3])
    Config.set("graphics", "resizable", "0")

from kivy.app import App
from kivy.clock import Clock
from kivy.core.text import Label as CoreLabel
from kivy.core.window import Window
from kivy.lang import Builder
from kivy.metrics import mm
from kivy.uix.screenmanager import ScreenManager

from foundation.languages import LANGUAGES
from kiosk.i18n import own_translation
from kiosk.touch import texts as tt
from kiosk.touch import theme, widgets
from kiosk.touch.app import SHARED_KV, register_fonts
from kiosk.touch.language import LANGUAGE_KV, LanguageScreen
from kiosk.touch.view import TouchView

TOFU = "\ue000"  # private use: no glyph in any of our fonts


def pixels(text: str, font: str, script: str) -> tuple[tuple[int, int], bytes]:
    label = CoreLabel(text=text, font_name=font, font_size=48, font_script_name=script)
    label.refresh()
    width, height = label.texture.size
    return (width, height), bytes(label.texture.pixels)


def inked(data: bytes) -> int:
    return sum(1 for alpha in data[3::4] if alpha > 0)


def probe_fonts() -> dict[str, Any]:
    register_fonts()
    report: dict[str, Any] = {}
    for language in LANGUAGES:
        script = language.script or "Latn"
        samples = [language.name, own_translation(language.code, tt.LANGUAGE) or ""]
        results = []
        for text in samples:
            if not text:
                results.append({"text": text, "ink": 0, "differs_from_tofu": False})
                continue
            size, data = pixels(text, language.font, script)
            tofu_size, tofu_data = pixels(TOFU * len(text), language.font, script)
            results.append({
                "text": text, "ink": inked(data),
                "differs_from_tofu": (size, data) != (tofu_size, tofu_data),
            })  # fmt: skip
        report[language.code] = results
    # क्ष (ka + virama + ssa) is one conjunct when shaped as Devanagari, three
    # glyphs with a visible virama under the Latin default.
    shaped = pixels("क्षमा नेपाली", "AnnapurnaSIL", "Deva")
    unshaped = pixels("क्षमा नेपाली", "AnnapurnaSIL", "Latn")
    report["_deva_shaping"] = {
        "differs": shaped != unshaped, "width_deva": shaped[0][0], "width_latn": unshaped[0][0],
    }  # fmt: skip
    # What every shared rule binds to follows the person's language.
    view = TouchView()
    report["_view_fonts"] = {}
    for language in LANGUAGES:
        session = type("S", (), {})()
        session.language, session.large_text, session.countdown = language.code, False, None
        session.high_contrast, session.more_time, session.countdown_seconds = False, False, 20.0
        session.t = lambda message, **_values: message
        view.update_shared(session)
        report["_view_fonts"][language.code] = [view.font_name, view.font_script]
    # The check itself: Nepali in the Latin font is nothing but tofu.
    control = pixels("नेपाली", "NotoSans", "Latn")
    report["_control"] = {"equals_tofu": control == pixels(TOFU * 6, "NotoSans", "Latn")}
    return report


class Probe(App):  # type: ignore[misc]
    """Just enough of PublicApp for the shared rules and the language screen."""

    def __init__(self) -> None:
        super().__init__()
        self.theme, self.mm = theme, mm
        self.view = TouchView()
        self.view.scale = float(sys.argv[5]) if len(sys.argv) > 5 else 1.0
        self.session = type("S", (), {"languages": [lang.code for lang in LANGUAGES]})()

    def language_name(self, code: str) -> str:
        return {lang.code: lang.name for lang in LANGUAGES}[code]

    def act(self, *_args: Any) -> None:
        pass

    def fit_font(
        self, text: str, size: float, width: float, font_name: str = "", height: float = 0.0
    ) -> float:
        return widgets.fit_font(text, size, width, font_name, height)

    def build(self) -> ScreenManager:
        register_fonts()
        for kv in SHARED_KV:
            Builder.load_file(str(kv))
        Builder.load_file(str(LANGUAGE_KV))
        manager = ScreenManager()
        manager.add_widget(LanguageScreen(name="language"))
        self.previous: list[dict[str, Any]] = []
        self.waited = 0.0
        Clock.schedule_interval(self.measure, 0.25)
        return manager

    def snapshot(self) -> list[dict[str, Any]]:
        screen = self.root.get_screen("language")
        per_mm = mm(1)
        buttons = []
        for language in LANGUAGES:
            button = screen.ids[f"lang_{language.code}"]
            x, y = button.to_window(button.x, button.y)
            buttons.append({
                "code": language.code, "font": button.font_name,
                "x": x / per_mm, "y": y / per_mm,
                "w": button.width / per_mm, "h": button.height / per_mm,
                "text_w": button.texture_size[0] / per_mm,
                "text_h": button.texture_size[1] / per_mm,
            })  # fmt: skip
        return buttons

    def measure(self, dt: float) -> bool:
        """Reports once the layout has settled (two equal looks in a row)."""
        self.waited += dt
        buttons = self.snapshot()
        settled = buttons == self.previous and all(b["h"] > 0 for b in buttons)
        self.previous = buttons
        if not settled and self.waited < 15:
            return True
        per_mm = mm(1)
        print(json.dumps({
            "window": [Window.width / per_mm, Window.height / per_mm],
            "window_px": list(Window.size), "buttons": buttons,
        }), flush=True)  # fmt: skip
        if len(sys.argv) > 4:  # a screenshot for people to look at
            Window.screenshot(sys.argv[4])
        self.stop()
        return False


if __name__ == "__main__":
    if sys.argv[1] == "fonts":
        Window.size  # noqa: B018  (a window: textures need a GL context)
        print(json.dumps(probe_fonts()), flush=True)
    else:
        Probe().run()
