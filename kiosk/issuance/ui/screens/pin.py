"""The PIN keypad: masked dots, tries left, a clear warning at the last try.
Layout in ``pin.kv``."""

from __future__ import annotations

from kivy.uix.screenmanager import Screen


class PinScreen(Screen):  # type: ignore[misc]
    pass
