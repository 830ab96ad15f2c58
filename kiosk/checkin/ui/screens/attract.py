"""Waiting for the next person: facility, time, tap your card, code entry, call staff."""

from __future__ import annotations

from kivy.uix.screenmanager import Screen


class AttractScreen(Screen):  # type: ignore[misc]
    """Layout in ``attract.kv``; it binds to ``app.view`` and calls ``app.act``."""
