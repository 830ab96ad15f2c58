"""The order and its fee before paying. Layout in ``confirm.kv``."""

from __future__ import annotations

from kivy.uix.screenmanager import Screen


class ConfirmScreen(Screen):  # type: ignore[misc]
    pass
