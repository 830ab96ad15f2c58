"""The enrolment screens: one module and one ``.kv`` each, added to the
touchscreen that opens the mode (class and rule names are prefixed, as they
live next to that touchscreen's own)."""

from __future__ import annotations

from pathlib import Path

from kivy.uix.screenmanager import Screen

from kiosk.enrolment.flow import EnrolmentScreen
from kiosk.enrolment.ui.screens.card import EnrolCardScreen
from kiosk.enrolment.ui.screens.code import EnrolCodeScreen
from kiosk.enrolment.ui.screens.result import EnrolResultScreen
from kiosk.enrolment.ui.screens.wait import EnrolWaitScreen

HERE = Path(__file__).resolve().parent
# Rules the screens share (loaded before the screens' own files).
KV_FILES = (HERE / "widgets.kv",)

SCREENS: dict[str, tuple[type[Screen], Path]] = {
    EnrolmentScreen.CODE: (EnrolCodeScreen, HERE / "code.kv"),
    EnrolmentScreen.WAIT: (EnrolWaitScreen, HERE / "wait.kv"),
    EnrolmentScreen.CARD: (EnrolCardScreen, HERE / "card.kv"),
    EnrolmentScreen.RESULT: (EnrolResultScreen, HERE / "result.kv"),
}
