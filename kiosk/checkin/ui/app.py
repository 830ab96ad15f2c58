"""The Kivy touchscreen app for facility check-in.

Layout: one module and one ``.kv`` file per screen (``kiosk/checkin/ui/screens/``)
on the shared touch foundation (:mod:`kiosk.touch.app`). Screens bind to
:class:`~kiosk.checkin.ui.view.CheckinView`, a mirror of the plain-Python
:class:`~kiosk.checkin.session.CheckinSession` as Kivy properties; handlers
in ``.kv`` are single calls on :meth:`KioskApp.act`.

Card events arrive on the card reader's thread and are handed to Kivy's
main thread (:func:`~kiosk.touch.app.post_to_ui`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kiosk.checkin.session import CheckinSession
from kiosk.checkin.ui.screens import SCREENS
from kiosk.checkin.ui.view import CheckinView
from kiosk.touch.app import PublicApp, post_to_ui


class KioskApp(PublicApp):
    """The check-in touchscreen; ``session`` is built by the caller."""

    title = "City kiosk"
    screens = SCREENS
    view: CheckinView
    session: CheckinSession

    def __init__(
        self,
        session_factory: Callable[[Callable[[CheckinSession], None]], CheckinSession],
        facility_name: str,
        on_started: Callable[[KioskApp], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(facility_name, on_started, **kwargs)
        self.view = CheckinView()
        self.session = session_factory(self._session_changed)
        self.dev_panel: Any = None  # the demo's developer panel, when attached

    # --- from other threads --------------------------------------------------
    def post_card(self, ref: str | None, readable: bool = True) -> None:
        """Thread-safe: a card was identified (``ref``) or could not be used."""
        post_to_ui(lambda: self._card(ref, readable))

    # --- main thread -------------------------------------------------------
    def _card(self, ref: str | None, readable: bool) -> None:
        now = time.monotonic()
        if ref is None:
            self.session.card_unusable(readable, now)
        else:
            self.session.card_presented(ref, now)

    # --- called from .kv -----------------------------------------------------
    def act(self, action: str, arg: str = "") -> None:
        now = time.monotonic()
        s = self.session
        actions: dict[str, Callable[[], None]] = {
            "language": lambda: s.open_language(now),
            "choose_language": lambda: s.choose_language(arg, now),
            "larger": lambda: s.toggle_large_text(now),
            "keypad": lambda: s.open_keypad(now),
            "key": lambda: s.key(arg, now),
            "staff": lambda: s.call_staff(now),
            "back": lambda: s.back(now),
            "continue": lambda: s.activity(now),
        }
        actions[action]()
