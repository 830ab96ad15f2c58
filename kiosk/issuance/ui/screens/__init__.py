"""The issuance screens: one module and one ``.kv`` each (the language
screen is the shared one of :mod:`kiosk.touch.language`)."""

from __future__ import annotations

from pathlib import Path

from kivy.uix.screenmanager import Screen

from kiosk.issuance.flow import IssuanceScreen
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
from kiosk.touch.staff import STAFF_KV, StaffScreen

HERE = Path(__file__).resolve().parent

SCREENS: dict[IssuanceScreen, tuple[type[Screen], Path]] = {
    IssuanceScreen.ATTRACT: (IssuanceAttractScreen, HERE / "attract.kv"),
    IssuanceScreen.LANGUAGE: (LanguageScreen, LANGUAGE_KV),
    IssuanceScreen.PLACE_CARD: (PlaceCardScreen, HERE / "place_card.kv"),
    IssuanceScreen.WAIT: (WaitScreen, HERE / "wait.kv"),
    IssuanceScreen.PIN: (PinScreen, HERE / "pin.kv"),
    IssuanceScreen.KINDS: (KindsScreen, HERE / "kinds.kv"),
    IssuanceScreen.OPTIONS: (OptionsScreen, HERE / "options.kv"),
    IssuanceScreen.COPIES: (CopiesScreen, HERE / "copies.kv"),
    IssuanceScreen.CONFIRM: (ConfirmScreen, HERE / "confirm.kv"),
    IssuanceScreen.PRINTING: (PrintingScreen, HERE / "printing.kv"),
    IssuanceScreen.TAKE_CARD: (TakeCardScreen, HERE / "take_card.kv"),
    IssuanceScreen.THANKS: (ThanksScreen, HERE / "thanks.kv"),
    IssuanceScreen.NOTICE: (NoticeScreen, HERE / "notice.kv"),
    IssuanceScreen.STAFF: (StaffScreen, STAFF_KV),
}
