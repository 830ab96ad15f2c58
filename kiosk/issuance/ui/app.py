"""The Kivy touchscreen of a counter kiosk: certificate issuance.

Screens (``kiosk/issuance/ui/screens/``) bind to :class:`IssuanceView`, a
mirror of the plain-Python :class:`~kiosk.issuance.flow.IssuanceFlow`;
handlers in ``.kv`` are single calls on ``app.act``. Card events and the
orchestrator's results arrive on other threads and are handed to Kivy's
main thread with ``Clock.schedule_once``; nothing else touches the flow.

Hardening as check-in: no exit on Escape, no settings panel.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kivy.clock import Clock
from kivy.metrics import mm

from kiosk.checkin.ui.app import PublicApp
from kiosk.issuance.flow import IssuanceFlow
from kiosk.issuance.ui.screens import SCREENS
from kiosk.issuance.ui.view import IssuanceView
from kiosk.touch import theme

HERE = Path(__file__).resolve().parent
SHARED_KV = [HERE.parent / "widgets.kv", HERE.parent / "screens" / "keypad.kv", HERE / "widgets.kv"]


def post_to_ui(call: Callable[[], None]) -> None:
    """Thread-safe: run ``call`` on Kivy's main thread (the orchestrator's ``post``)."""
    Clock.schedule_once(lambda _dt: call(), 0)


class IssuanceApp(PublicApp):
    title = "City kiosk: certificates"
    kv_files = tuple(SHARED_KV)
    screens = SCREENS

    def __init__(
        self,
        flow_factory: Callable[[Callable[[IssuanceFlow], None]], IssuanceFlow],
        facility_name: str,
        on_started: Callable[[IssuanceApp], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.view = IssuanceView()
        self.facility_name = facility_name
        self.session = self.flow = flow_factory(self._flow_changed)
        self._on_started = on_started
        self.theme = theme
        self.mm = mm

    # --- from other threads --------------------------------------------------
    def post_card(self, present: bool) -> None:
        """Thread-safe: a card was placed on (or removed from) the reader."""
        Clock.schedule_once(lambda _dt: self._card(present), 0)

    # --- main thread -------------------------------------------------------
    def _card(self, present: bool) -> None:
        now = time.monotonic()
        if present:
            self.flow.card_placed(now)
        else:
            self.flow.card_removed(now)

    def _flow_changed(self, flow: IssuanceFlow) -> None:
        self.view.update(flow)

    # --- called from .kv -----------------------------------------------------
    def act(self, action: str, arg: str = "", value: str = "") -> None:
        now = time.monotonic()
        f = self.flow
        actions: dict[str, Callable[[], None]] = {
            "start": lambda: f.start(now),
            "language": lambda: f.open_language(now),
            "choose_language": lambda: f.choose_language(arg, now),
            "larger": lambda: f.toggle_large_text(now),
            "key": lambda: f.key(arg, now),
            "kind": lambda: f.choose_kind(arg, now),
            "option": lambda: f.set_option(arg, value, now),
            "copies": lambda: f.change_copies(int(arg), now),
            "next": lambda: f.next(now),
            "back": lambda: f.back(now),
            "cancel": lambda: f.cancel(now),
            "continue": lambda: f.continue_session(now),
        }
        actions[action]()
