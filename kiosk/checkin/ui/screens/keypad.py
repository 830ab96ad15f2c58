"""Reservation code on a telephone-layout keypad, masked as dots."""

from __future__ import annotations

from kivy.uix.screenmanager import Screen


class KeypadScreen(Screen):  # type: ignore[misc]
    """Layout in ``keypad.kv``; it binds to ``app.view`` and calls ``app.act``."""
