"""Choose the language, each shown in its own name and its own font. The
choices are the registered languages (:mod:`foundation.languages`) that have
a catalogue, in the registry's order. Both touchscreens show this screen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.factory import Factory
from kivy.uix.screenmanager import Screen

from foundation import languages

LANGUAGE_KV = Path(__file__).resolve().parent / "language.kv"


class LanguageScreen(Screen):  # type: ignore[misc]
    """Layout in ``language.kv``; the buttons are added here, one per language."""

    def on_pre_enter(self, *_args: Any) -> None:
        app = App.get_running_app()
        grid = self.ids.choices
        grid.clear_widgets()
        for code in app.session.languages:
            entry = languages.language(code)
            button = Factory.LanguageButton(text=app.language_name(code))
            button.code = code
            button.own_font = entry.font
            button.own_script = entry.script or "Latn"
            button.bind(on_release=lambda _b, c=code: app.act("choose_language", c))
            grid.add_widget(button)
            self.ids[f"lang_{code}"] = button  # addressable like kv ids (tests, tools)
