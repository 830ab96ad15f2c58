"""Developer panel for the demo: hotkeys that put virtual cards on the reader
(through vpcd and pcscd, exactly as a real card arrives) and a strip that
shows the door relay as the lock controller reports it.

    F5  member card (FeliCa) of the demo member, who has a booking now
    F6  My Number Card (test PKI)
    F7  an unknown card
    F8  take the card away
    F9  a second member card (FeliCa) of the demo member, not yet enrolled:
        enrol it with a code from the booking site ("Enrol a new card")

Only started by ``python -m kiosk --dev-panel``, which the demo uses; never on
a real kiosk (there is no vpcd there).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from kivy.clock import Clock
from kivy.core.window import Window
from kivy.metrics import mm
from kivy.uix.label import Label

from cardreader.sim.profiles import build_card
from cardreader.sim.testpki import load_test_pki_with
from cardreader.sim.vpcd import VpcdLink
from lockctl.client import LockClient
from lockctl.errors import LockctlError

KEYS = {286: "felica", 287: "mynumber", 288: "unknown", 290: "felica:new"}  # F5-F7, F9
REMOVE_KEY = 289  # F8
HELP = (
    "DEMO  F5 member card · F6 My Number Card · F7 unknown card · F8 remove"
    " · F9 new member card (to enrol)"
)
# The IDm of the F9 card: a FeliCa card no member has enrolled (yet).
NEW_MEMBER_CARD_IDM = bytes.fromhex("012E4CD2A1B2C3E5")
# The counter kiosk: residents' My Number Cards ("mynumber:<test user>").
COUNTER_KEYS = {287: "mynumber:valid", 288: "mynumber:expired", 290: "mynumber:ineligible"}
COUNTER_HELP = (
    "DEMO  F6 My Number Card (PIN 1234) · F7 expired card · F9 resident who must use"
    " the counter · F8 remove"
)


class DevPanel:
    def __init__(
        self,
        vpcd_port: int,
        pki_dir: Path,
        lock_socket: Path | None,
        door: str = "",
        *,
        keys: dict[int, str] | None = None,
        help_text: str = HELP,
    ) -> None:
        self.vpcd_port = vpcd_port
        self.pki_dir = pki_dir
        self.lock = LockClient(lock_socket, timeout=0.3) if lock_socket is not None else None
        self.door = door
        self.keys = keys or KEYS
        self.help = help_text
        self.link: VpcdLink | None = None
        self.room = 0.0  # the strip's own space below the app (attach)
        self.label = Label(
            text=help_text, size_hint=(None, None), color=(1, 1, 1, 1), font_size=mm(3),
            halign="left", valign="middle", padding=(mm(2), mm(1)),
        )  # fmt: skip

    def attach(self, *, make_room: bool = False) -> None:
        """Hotkeys and the strip; ``make_room``: the window grows by the
        strip's height and the app keeps the rest, so the strip hides none of
        its bottom buttons ("Enrol a card", "Call staff")."""
        self.room = mm(12) if make_room else 0.0
        if make_room:
            Window.size = (Window.width, Window.height + self.room)
            Window.bind(size=self._place_app)
            self._place_app()
        Window.bind(on_key_down=self._key)
        Window.add_widget(self.label)
        with self.label.canvas.before:
            from kivy.graphics import Color, Rectangle

            Color(0.1, 0.1, 0.1, 0.85)
            self._bg = Rectangle(pos=self.label.pos, size=self.label.size)
        self.label.bind(texture_size=self._layout)
        Clock.schedule_interval(self._poll_relay, 0.5)

    def _place_app(self, *_args: Any) -> None:
        for root in Window.children:
            if root is not self.label:
                root.size_hint_y = None
                root.height, root.y = Window.height - self.room, self.room

    def _layout(self, *_args: Any) -> None:
        self.label.size = (Window.width, max(self.room, self.label.texture_size[1] + mm(2)))
        self.label.text_size = (Window.width - mm(4), None)
        self.label.pos = (0, 0)
        self._bg.pos, self._bg.size = self.label.pos, self.label.size

    def _key(self, _window: Any, key: int, *_args: Any) -> bool:
        if key in self.keys:
            # Card building (RSA for the My Number test PKI) off the UI thread.
            threading.Thread(target=self.insert, args=(self.keys[key],), daemon=True).start()
            return True
        if key == REMOVE_KEY:
            threading.Thread(target=self.remove, daemon=True).start()
            return True
        return False

    def insert(self, card: str) -> None:
        """``card`` is a profile, ``mynumber:<test user>`` or ``felica:new``
        (the F9 card)."""
        self.remove()
        profile, _, variant = card.partition(":")
        uid = NEW_MEMBER_CARD_IDM if card == "felica:new" else None
        variant = "valid" if profile != "mynumber" or not variant else variant
        pki = load_test_pki_with(self.pki_dir, variant) if profile == "mynumber" else None
        virtual = build_card(profile, pki=pki, variant=variant, uid=uid)
        link = VpcdLink(virtual, port=self.vpcd_port)
        link.insert()
        self.link = link

    def remove(self) -> None:
        link, self.link = self.link, None
        if link is not None:
            link.remove()

    def _poll_relay(self, _dt: float) -> None:
        card = "card on reader" if self.link is not None else "no card"
        if self.lock is None:
            self.label.text = f"{self.help}\n{card}"
            return
        try:
            doors = self.lock.status()["doors"]
            door = next(d for d in doors if d["door"] == self.door)
            relay = "UNLOCKED (relay energised)" if door.get("relay_energised") else "locked"
        except (LockctlError, StopIteration, KeyError):
            relay = "lock controller not answering"
        self.label.text = f"{self.help}\n{self.door}: {relay} · {card}"
