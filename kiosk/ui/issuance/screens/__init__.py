"""The issuance screens: one module and one ``.kv`` each (the language
screen is check-in's)."""

from __future__ import annotations

from pathlib import Path

from kivy.uix.screenmanager import Screen

from kiosk.ui.issuance.screens.attract import IssuanceAttractScreen
from kiosk.ui.issuance.screens.confirm import ConfirmScreen
from kiosk.ui.issuance.screens.copies import CopiesScreen
from kiosk.ui.issuance.screens.kinds import KindsScreen
from kiosk.ui.issuance.screens.notice import NoticeScreen
from kiosk.ui.issuance.screens.options import OptionsScreen
from kiosk.ui.issuance.screens.pin import PinScreen
from kiosk.ui.issuance.screens.place_card import PlaceCardScreen
from kiosk.ui.issuance.screens.printing import PrintingScreen
from kiosk.ui.issuance.screens.take_card import TakeCardScreen
from kiosk.ui.issuance.screens.thanks import ThanksScreen
from kiosk.ui.issuance.screens.wait import WaitScreen
from kiosk.ui.screens.language import LanguageScreen

HERE = Path(__file__).resolve().parent
CHECKIN = HERE.parents[1] / "screens"

SCREENS: dict[str, tuple[type[Screen], Path]] = {
    "attract": (IssuanceAttractScreen, HERE / "attract.kv"),
    "language": (LanguageScreen, CHECKIN / "language.kv"),
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
