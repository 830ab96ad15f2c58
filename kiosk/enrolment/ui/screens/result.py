"""Enrolled, or why not and what to do next, in words and a symbol. Layout in ``result.kv``."""

from __future__ import annotations

from kivy.uix.screenmanager import Screen


class EnrolResultScreen(Screen):  # type: ignore[misc]
    """Binds to ``app.view`` and ``app.mode.view``; calls ``app.act``."""
