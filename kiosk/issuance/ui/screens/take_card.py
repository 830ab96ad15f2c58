"""Take the card (with a chime until it is removed). Layout in ``take_card.kv``."""

from __future__ import annotations

from kivy.uix.screenmanager import Screen


class TakeCardScreen(Screen):  # type: ignore[misc]
    pass
