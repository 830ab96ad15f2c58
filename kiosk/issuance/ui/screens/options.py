"""What the certificate shows: a row per option, defaults are the least data.
The chosen value is filled and marked "✓" (shape and text, not colour only).
Layout in ``options.kv``; rows built here from ``app.view.options``."""

from __future__ import annotations

from typing import Any

from kivy.app import App
from kivy.factory import Factory
from kivy.metrics import mm
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.screenmanager import Screen

from foundation import languages
from kiosk.touch import theme


def fit_row(row: BoxLayout) -> None:
    row.height = max([mm(theme.TARGET_MM + 2)] + [child.height for child in row.children])


class OptionsScreen(Screen):  # type: ignore[misc]
    def on_kv_post(self, *_args: Any) -> None:
        App.get_running_app().view.bind(options=lambda *_a: self.rebuild())

    def rebuild(self) -> None:
        app = App.get_running_app()
        box = self.ids.rows
        box.clear_widgets()
        for option_id, label, values in app.view.options:
            row = BoxLayout(size_hint_y=None, height=mm(theme.TARGET_MM + 2), spacing=mm(3))
            # label and texts are markup (kiosk.touch.mixed.latin).
            row.add_widget(Factory.KLabel(text=label, halign="left", markup=True))
            for value, text, selected in values:
                kind = "PrimaryButton" if selected else "SecondaryButton"
                # ✓ in the Japanese font: the Latin and Devanagari ones lack it.
                mark = f"[font={languages.FONT_CJK}]✓[/font] " if selected else ""
                button = getattr(Factory, kind)(text=mark + text, markup=True)
                button.size_hint_x = 0.5
                button.bind(on_release=lambda _b, o=option_id, v=value: app.act("option", o, v))
                row.add_widget(button)
                self.ids[f"option_{option_id}_{value}"] = button
            # A long label or choice wraps: the row grows to its tallest part.
            for child in row.children:
                child.bind(height=lambda *_a, r=row: fit_row(r))
            fit_row(row)
            box.add_widget(row)
