"""The issuance screens: one module and one ``.kv`` each (the language
screen is the shared one of :mod:`kiosk.touch.language`)."""

from __future__ import annotations

from pathlib import Path

from kivy.uix.screenmanager import Screen

from kiosk.issuance.ui.screens.attract import IssuanceAttractScreen
from kiosk.issuance.ui.screens.confirm import ConfirmScreen
from kiosk.issuance.ui.screens.copies import CopiesScreen
from kiosk.issuance.ui.screens.kinds import KindsScreen
from kiosk.issuance.ui.screens.notice import NoticeScreen
from kiosk.issuance.ui.screens.options import OptionsScreen
from kiosk.issuance.ui.screens.pin import PinScreen
from kiosk.issuance.ui.screens.place_card import PlaceCardScreen
from kiosk.issuance.ui.screens.printing import PrintingScreen
from kiosk.issuance.ui.screens.take_card import TakeCardScreen
from kiosk.issuance.ui.screens.thanks import ThanksScreen
from kiosk.issuance.ui.screens.wait import WaitScreen
from kiosk.touch.language import LANGUAGE_KV, LanguageScreen

HERE = Path(__file__).resolve().parent

SCREENS: dict[str, tuple[type[Screen], Path]] = {
    "attract": (IssuanceAttractScreen, HERE / "attract.kv"),
    "language": (LanguageScreen, LANGUAGE_KV),
    "place_card": (PlaceCardScreen, HERE / "place_card.kv"),
    "wait": (WaitScreen, HERE / "wait.kv"),
    "pin": (PinScreen, HERE / "pin.kv"),
    "kinds": (KindsScreen, HERE / "kinds.kv"),
    "options": (OptionsScreen, HERE / "options.kv"),
    "copies": (CopiesScreen, HERE / "copies.kv"),
    "confirm": (ConfirmScreen, HERE / "confirm.kv"),
    "printing": (PrintingScreen, HERE / "printing.kv"),
    "take_card": (TakeCardScreen, HERE / "take_card.kv"),
    "thanks": (ThanksScreen, HERE / "thanks.kv"),
    "notice": (NoticeScreen, HERE / "notice.kv"),
}
