"""Central is checking the code or linking the card. Layout in ``wait.kv``."""

from __future__ import annotations

from kivy.uix.screenmanager import Screen


class EnrolWaitScreen(Screen):  # type: ignore[misc]
    """Binds to ``app.view`` and ``app.mode.view``; calls ``app.act``."""
