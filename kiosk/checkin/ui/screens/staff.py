"""Staff has been called: reassurance while the person waits."""

from __future__ import annotations

from kivy.uix.screenmanager import Screen


class StaffScreen(Screen):  # type: ignore[misc]
    """Layout in ``staff.kv``; it binds to ``app.view`` and calls ``app.act``."""
