"""A flow one touchscreen opens from its attract screen (card enrolment on
the check-in and the counter touchscreens), without either knowing the other.

The :class:`~kiosk.touch.app.PublicApp` adds the mode's screens to its own,
shows the mode's entry button on its attract screen (``app.view.t_mode``)
and, while the mode is open, hands it every action, card and clock tick; the
screens keep binding to ``app.view`` for what all screens share (text size,
countdown, OK/Clear/Back), which the mode fills (:meth:`TouchMode.show`),
and to ``app.mode.view`` for the mode's own words. When the mode's session
ends it calls ``on_exit`` and the touchscreen wipes its own session too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk.cards import CardSeen
from kiosk.touch.session import TouchSession

if TYPE_CHECKING:  # Kivy only where a window opens
    from kiosk.touch.view import TouchView


class TouchMode(ABC):
    """Subclasses set ``screens`` (name -> screen class and its ``.kv``),
    ``kv_files``, ``entry_label`` (message id of the attract button),
    ``session`` and ``view``."""

    screens: Mapping[str, tuple[type, Path]] = {}
    kv_files: tuple[Path, ...] = ()
    entry_label: str = ""
    # What each of the mode's screens says aloud (kiosk.voice.prompts).
    voice_screens: Mapping[str, Any] = {}
    session: TouchSession
    view: Any

    @abstractmethod
    def bind(self, on_change: Callable[[], None], on_exit: Callable[[], None]) -> None:
        """The app's callbacks: the session changed; the person left the mode."""

    @abstractmethod
    def open(self, language: str, large_text: bool, now: float) -> None:
        """Start for a new person, in the language and text size they chose."""

    @abstractmethod
    def act(self, action: str, arg: str, now: float) -> None:
        """An action from a ``.kv`` handler (``app.act``) while the mode is open."""

    @abstractmethod
    def card(self, seen: CardSeen, now: float) -> None:
        """A card identified by :class:`kiosk.cards.CardFeed`, on the UI loop."""

    @abstractmethod
    def show(self, view: TouchView) -> None:
        """Fill the mode's view and the app's shared one from the session
        (the screen name last: it switches the screen)."""

    @abstractmethod
    def close(self) -> None:
        """The app stops: release what the mode holds."""
