"""The Kivy touchscreen app for facility check-in.

Layout: one module and one ``.kv`` file per screen (``kiosk/checkin/ui/screens/``)
on the shared touch foundation (:mod:`kiosk.touch.app`). Screens bind to
:class:`~kiosk.checkin.ui.view.CheckinView`, a mirror of the plain-Python
:class:`~kiosk.checkin.session.CheckinSession` as Kivy properties; handlers
in ``.kv`` are single calls on :meth:`KioskApp.act`.

Card events arrive on the card reader's thread and are handed to Kivy's
main thread (:meth:`~kiosk.touch.app.PublicApp.post_seen`); while an
attached mode (card enrolment) is open, cards go to it and open no door.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kiosk.cards import CardSeen
from kiosk.checkin.session import CheckinSession
from kiosk.checkin.ui.screens import SCREENS
from kiosk.checkin.ui.view import CheckinView
from kiosk.touch.app import PublicApp
from kiosk.touch.mode import TouchMode
from kiosk.voice.prompts import CHECKIN


class KioskApp(PublicApp):
    """The check-in touchscreen; ``session`` is built by the caller."""

    title = "City kiosk"
    can_call_staff = True
    screens = SCREENS
    voice_screens = CHECKIN
    view: CheckinView
    session: CheckinSession

    def __init__(
        self,
        session_factory: Callable[[Callable[[CheckinSession], None]], CheckinSession],
        facility_name: str,
        on_started: Callable[[KioskApp], None] | None = None,
        mode: TouchMode | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(facility_name, on_started, mode, **kwargs)
        self.view = CheckinView()
        self.session = session_factory(self._session_changed)
        self.dev_panel: Any = None  # the demo's developer panel, when attached

    # --- main thread -------------------------------------------------------
    def host_card(self, seen: CardSeen, now: float) -> None:
        if seen.ref is None:
            self.session.card_unusable(seen.readable, now)
        else:
            self.session.card_presented(seen.ref, now)

    def host_act(self, action: str, arg: str, value: str, now: float) -> None:
        s = self.session
        actions: dict[str, Callable[[], None]] = {
            "language": lambda: s.open_language(now),
            "choose_language": lambda: s.choose_language(arg, now),
            "keypad": lambda: s.open_keypad(now),
            "key": lambda: s.key(arg, now),
            "staff": lambda: s.call_staff(now),
            # The shared accessibility bar's button and the keypad's call-staff key.
            "call_staff": lambda: s.call_staff(now),
            "back": lambda: s.back(now),
            "continue": lambda: s.activity(now),
        }
        actions[action]()

    def call_staff(self, now: float) -> None:
        """The access bar's "Call staff": the check-in staff screen (leaving
        card enrolment first when it is open)."""
        if self.mode_active and self.mode is not None:
            self.mode.session.reset()  # its on_exit hands the screen back
        self.session.call_staff(now)
