"""Every refusal and failure: what happened, what to do next (its own words per case).
Layout in ``notice.kv``."""

from __future__ import annotations

from kivy.uix.screenmanager import Screen


class NoticeScreen(Screen):  # type: ignore[misc]
    pass
