"""Tap the card to enrol; a card that cannot be enrolled is said so here. Layout in ``card.kv``."""

from __future__ import annotations

from kivy.uix.screenmanager import Screen


class EnrolCardScreen(Screen):  # type: ignore[misc]
    """Binds to ``app.view`` and ``app.mode.view``; calls ``app.act``."""
