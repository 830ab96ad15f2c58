"""Background work in progress (card read, PIN check, order, payment). Layout in ``wait.kv``."""

from __future__ import annotations

from kivy.uix.screenmanager import Screen


class WaitScreen(Screen):  # type: ignore[misc]
    pass
