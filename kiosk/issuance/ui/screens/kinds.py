"""Choose a certificate: one button per kind the resident may order now.
Layout in ``kinds.kv``; buttons built here from ``app.view.kinds``."""

from __future__ import annotations

from typing import Any

from kivy.app import App
from kivy.factory import Factory
from kivy.uix.screenmanager import Screen


class KindsScreen(Screen):  # type: ignore[misc]
    def on_kv_post(self, *_args: Any) -> None:
        App.get_running_app().view.bind(kinds=lambda *_a: self.rebuild())

    def rebuild(self) -> None:
        app = App.get_running_app()
        box = self.ids.choices
        box.clear_widgets()
        for kind_id, label, fee in app.view.kinds:
            # label is markup: the Japanese name in the Japanese font.
            button = Factory.PrimaryButton(text=f"{label}\n{fee}", markup=True)
            button.bind(on_release=lambda _b, k=kind_id: app.act("kind", k))
            box.add_widget(button)
            self.ids[f"kind_{kind_id}"] = button  # addressable like kv ids (tests)
