"""The issuance start screen: service name, start, language, larger text.
Layout in ``attract.kv``."""

from __future__ import annotations

from kivy.uix.screenmanager import Screen


class IssuanceAttractScreen(Screen):  # type: ignore[misc]
    pass
