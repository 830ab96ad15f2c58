"""The enrolment code on the shared telephone-layout keypad, shown as typed.
Layout in ``code.kv``."""

from __future__ import annotations

from kivy.uix.screenmanager import Screen


class EnrolCodeScreen(Screen):  # type: ignore[misc]
    """Binds to ``app.view`` and ``app.mode.view``; calls ``app.act``."""
