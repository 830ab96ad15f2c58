"""Choose the language (each shown in its own language). The choices come
from the catalogues present, so a new language is a new ``.po`` file. Both
touchscreens show this screen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.factory import Factory
from kivy.uix.screenmanager import Screen

LANGUAGE_KV = Path(__file__).resolve().parent / "language.kv"


class LanguageScreen(Screen):  # type: ignore[misc]
    """Layout in ``language.kv``; the buttons are added here, one per catalogue."""

    def on_pre_enter(self, *_args: Any) -> None:
        app = App.get_running_app()
        box = self.ids.choices
        box.clear_widgets()
        for code in app.session.languages:
            button = Factory.PrimaryButton(text=app.language_name(code))
            button.bind(on_release=lambda _b, c=code: app.act("choose_language", c))
            box.add_widget(button)
            self.ids[f"lang_{code}"] = button  # addressable like kv ids (tests, tools)
