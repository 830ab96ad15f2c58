"""The staff call screen both touchscreens show (layout in ``staff.kv``)."""

from __future__ import annotations

from pathlib import Path

from kivy.uix.screenmanager import Screen

STAFF_KV = Path(__file__).resolve().parent / "staff.kv"


class StaffScreen(Screen):  # type: ignore[misc]
    """Binds to ``app.view`` (title, body, next step) and calls ``app.act('back')``."""
