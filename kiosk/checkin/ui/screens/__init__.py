"""The screens of the check-in touchscreen: one module and one ``.kv`` each."""

from __future__ import annotations

from pathlib import Path

from kivy.uix.screenmanager import Screen

from kiosk.checkin.ui.screens.attract import AttractScreen
from kiosk.checkin.ui.screens.keypad import KeypadScreen
from kiosk.checkin.ui.screens.result import ResultScreen
from kiosk.checkin.ui.screens.staff import StaffScreen
from kiosk.touch.language import LANGUAGE_KV, LanguageScreen

HERE = Path(__file__).resolve().parent

SCREENS: dict[str, tuple[type[Screen], Path]] = {
    "attract": (AttractScreen, HERE / "attract.kv"),
    "language": (LanguageScreen, LANGUAGE_KV),
    "keypad": (KeypadScreen, HERE / "keypad.kv"),
    "result": (ResultScreen, HERE / "result.kv"),
    "staff": (StaffScreen, HERE / "staff.kv"),
}
