"""Number of copies (1 to the kind's maximum). Layout in ``copies.kv``."""

from __future__ import annotations

from kivy.uix.screenmanager import Screen


class CopiesScreen(Screen):  # type: ignore[misc]
    pass
