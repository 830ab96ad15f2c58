"""Thank you, check the certificates. Layout in ``thanks.kv``."""

from __future__ import annotations

from kivy.uix.screenmanager import Screen


class ThanksScreen(Screen):  # type: ignore[misc]
    pass
