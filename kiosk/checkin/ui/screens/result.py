"""What happened and what to do next, in words and a symbol, not colour alone."""

from __future__ import annotations

from kivy.uix.screenmanager import Screen


class ResultScreen(Screen):  # type: ignore[misc]
    """Layout in ``result.kv``; it binds to ``app.view`` and calls ``app.act``."""
