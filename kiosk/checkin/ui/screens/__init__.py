"""The screens of the check-in touchscreen: one module and one ``.kv`` each."""

from __future__ import annotations

from pathlib import Path

from kivy.uix.screenmanager import Screen

from kiosk.checkin.session import CheckinScreen
from kiosk.checkin.ui.screens.attract import AttractScreen
from kiosk.checkin.ui.screens.keypad import KeypadScreen
from kiosk.checkin.ui.screens.result import ResultScreen
from kiosk.touch.language import LANGUAGE_KV, LanguageScreen
from kiosk.touch.staff import STAFF_KV, StaffScreen

HERE = Path(__file__).resolve().parent

SCREENS: dict[CheckinScreen, tuple[type[Screen], Path]] = {
    CheckinScreen.ATTRACT: (AttractScreen, HERE / "attract.kv"),
    CheckinScreen.LANGUAGE: (LanguageScreen, LANGUAGE_KV),
    CheckinScreen.KEYPAD: (KeypadScreen, HERE / "keypad.kv"),
    CheckinScreen.RESULT: (ResultScreen, HERE / "result.kv"),
    CheckinScreen.STAFF: (StaffScreen, STAFF_KV),
}
