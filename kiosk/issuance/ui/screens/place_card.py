"""Place the My Number Card on the reader. Layout in ``place_card.kv``."""

from __future__ import annotations

from kivy.uix.screenmanager import Screen


class PlaceCardScreen(Screen):  # type: ignore[misc]
    pass
