"""The Kivy touchscreen of a counter kiosk: certificate issuance.

Screens (``kiosk/issuance/ui/screens/``) bind to :class:`IssuanceView`, a
mirror of the plain-Python :class:`~kiosk.issuance.flow.IssuanceFlow`;
handlers in ``.kv`` are single calls on ``app.act``. Card events and the
orchestrator's results arrive on other threads and are handed to Kivy's
main thread with :func:`~kiosk.touch.app.post_to_ui`; nothing else touches
the flow. Fonts, shared rules, idle clock and hardening (no exit on Escape,
no settings panel) come from :class:`~kiosk.touch.app.PublicApp`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cardreader.watch import CardEvent
from kiosk.cards import CardFeed
from kiosk.issuance.flow import IssuanceFlow
from kiosk.issuance.ui.screens import SCREENS
from kiosk.issuance.ui.view import IssuanceView
from kiosk.touch.app import PublicApp, post_to_ui
from kiosk.touch.mode import TouchMode
from kiosk.voice.prompts import ISSUANCE

HERE = Path(__file__).resolve().parent


class IssuanceApp(PublicApp):
    title = "City kiosk: certificates"
    can_call_staff = True
    kv_files = (HERE / "widgets.kv",)
    screens = SCREENS
    voice_screens = ISSUANCE
    view: IssuanceView
    session: IssuanceFlow

    def __init__(
        self,
        flow_factory: Callable[[Callable[[IssuanceFlow], None]], IssuanceFlow],
        facility_name: str,
        on_started: Callable[[IssuanceApp], None] | None = None,
        mode: TouchMode | None = None,
        card_feed: CardFeed | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(facility_name, on_started, mode, **kwargs)
        self.view = IssuanceView()
        self.session = self.flow = flow_factory(self._session_changed)
        # Identifies cards for the mode (the issuance flow reads its own).
        self.card_feed = card_feed

    # --- from other threads --------------------------------------------------
    def post_card_event(self, event: CardEvent) -> None:
        """Thread-safe: a card was placed on (or removed from) the reader."""
        post_to_ui(lambda: self._card_event(event))

    # --- main thread -------------------------------------------------------
    def _card_event(self, event: CardEvent) -> None:
        if self.mode_active:
            # The open mode (card enrolment) reads the card through the
            # shared feed; the issuance flow must not start on it.
            if event.kind == "inserted" and self.card_feed is not None:
                self.card_feed.offer(event)
            return
        now = time.monotonic()
        if event.kind == "inserted":
            self.flow.card_placed(now)
        elif event.kind == "removed":
            self.flow.card_removed(now)

    def host_act(self, action: str, arg: str, value: str, now: float) -> None:
        f = self.flow
        actions: dict[str, Callable[[], None]] = {
            "start": lambda: f.start(now),
            "language": lambda: f.open_language(now),
            "choose_language": lambda: f.choose_language(arg, now),
            "key": lambda: f.key(arg, now),
            "kind": lambda: f.choose_kind(arg, now),
            "option": lambda: f.set_option(arg, value, now),
            "copies": lambda: f.change_copies(int(arg), now),
            "next": lambda: f.next(now),
            "back": lambda: f.back(now),
            "cancel": lambda: f.cancel(now),
            "continue": lambda: f.continue_session(now),
            # The attract screen's button and the shared accessibility bar's.
            "staff": lambda: f.call_staff(now),
            "call_staff": lambda: f.call_staff(now),
        }
        actions[action]()

    def call_staff(self, now: float) -> None:
        """The access bar's "Call staff" and the keypad's call-staff key: the
        issuance staff screen (leaving card enrolment first when it is open)."""
        if self.mode_active and self.mode is not None:
            self.mode.session.reset()  # its on_exit hands the screen back
        self.flow.call_staff(now)
