"""Card enrolment as a :class:`~kiosk.touch.mode.TouchMode`: the check-in and
counter touchscreens show "Enrol a card" on their attract screens when
``[enrolment] enabled = true`` and hand the screen to it until the person
is done, cancels or walks away."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk.cards import CardSeen
from kiosk.enrolment import texts as tx
from kiosk.enrolment.session import EnrolmentSession
from kiosk.enrolment.ui.screens import KV_FILES, SCREENS
from kiosk.enrolment.ui.view import EnrolmentView
from kiosk.enrolment.wiring import EnrolmentKit, build_enrolment
from kiosk.touch.app import post_to_ui
from kiosk.touch.mode import TouchMode
from kiosk.touch.view import TouchView
from kiosk.voice.prompts import ENROLMENT
from sync.config import DeviceConfig


class EnrolmentMode(TouchMode):
    screens = SCREENS
    kv_files: tuple[Path, ...] = KV_FILES
    entry_label = tx.ENROL_A_CARD
    voice_screens = ENROLMENT
    session: EnrolmentSession
    view: EnrolmentView

    def __init__(self, kit: EnrolmentKit) -> None:
        self.kit = kit
        self.session = kit.session
        self.view = EnrolmentView()

    def bind(self, on_change: Callable[[], None], on_exit: Callable[[], None]) -> None:
        self.session.on_change = lambda _s: on_change()
        self.session.on_exit = on_exit

    def open(self, language: str, large_text: bool, now: float) -> None:
        self.session.open(language, large_text, now)

    def act(self, action: str, arg: str, now: float) -> None:
        s = self.session
        actions: dict[str, Callable[[], None]] = {
            "key": lambda: s.key(arg, now),
            "cancel": lambda: s.cancel(now),
            "done": lambda: s.done(now),
            "retry": lambda: s.retry(now),
            "continue": lambda: s.activity(now),
        }
        action_for = actions.get(action)
        if action_for is not None:  # shared widgets may send others: nothing to do
            action_for()

    def card(self, seen: CardSeen, now: float) -> None:
        self.session.card(seen, now)

    def show(self, view: TouchView) -> None:
        s = self.session
        self.view.update(s)
        view.update_shared(s)
        view.title, view.body, view.next_step = s.screen.title, s.screen.body, s.screen.next_step
        view.screen = s.screen.name

    def close(self) -> None:
        self.kit.close()


def enrolment_mode_for(config: DeviceConfig, **ports: Any) -> EnrolmentMode | None:
    """The mode when ``[enrolment] enabled``, else None. ``ports`` are
    injected into :func:`~kiosk.enrolment.wiring.build_enrolment`."""
    if not config.enrolment.enabled:
        return None
    return EnrolmentMode(build_enrolment(config, post_to_ui, **ports))
