"""Printing with progress; the person is asked to stay. Layout in ``printing.kv``."""

from __future__ import annotations

from kivy.uix.screenmanager import Screen


class PrintingScreen(Screen):  # type: ignore[misc]
    pass
