"""The enrolment screens' view model, in plain Python (no Kivy).

:class:`EnrolmentSession` drives the pure :class:`~kiosk.enrolment.flow.EnrolmentFlow`
from touches, cards, results and clock ticks, on the shared
:class:`~kiosk.touch.session.TouchSession` (language, larger text, idle
countdown, double-tap guard), hands the flow's requests to ``submit`` (the
worker) and says what each screen shows, already translated. When the
person is done, cancels or walks away it calls ``on_exit``, and the
touchscreen it was opened from shows its own attract screen again.

It is opened in the language and text size the person already chose on
that touchscreen; once the code is accepted it speaks the member's preferred
language when the kiosk has that catalogue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kiosk.cards import CardSeen
from kiosk.enrolment import texts as tx
from kiosk.enrolment.flow import (
    INTERACTIVE,
    RESULTS,
    EnrolmentFlow,
    EnrolmentScreen,
    EnrolmentStep,
    Redeemed,
    Request,
    Sent,
)
from kiosk.touch.session import TouchSession

# A result stays this long, then the touchscreen's attract screen returns.
RESULT_SECONDS = 10.0


@dataclass
class Screen:
    """What a screen shows, already translated."""

    name: EnrolmentScreen
    title: str = ""
    body: str = ""
    next_step: str = ""
    success: bool = False


@dataclass
class EnrolmentSession(TouchSession):
    submit: Callable[[Request], None] = lambda _r: None
    on_exit: Callable[[], None] = lambda: None
    flow: EnrolmentFlow = field(default_factory=EnrolmentFlow)
    screen: Screen = field(default_factory=lambda: Screen(EnrolmentScreen.CODE))

    # --- what the screens read -------------------------------------------
    @property
    def step(self) -> EnrolmentStep:
        return self.flow.step

    @property
    def code_text(self) -> str:
        """The code as typed, in two groups of four, the rest as open dots."""
        typed = self.flow.code.ljust(8, "○")
        return f"{typed[:4]} {typed[4:]}"

    @property
    def card_notice(self) -> str:
        notice = {"unsupported": tx.UNSUPPORTED_CARD, "unreadable": tx.UNREADABLE_CARD}
        return self.t(notice[self.flow.card_notice]) if self.flow.card_notice else ""

    @property
    def can_retry(self) -> bool:
        return self.flow.can_retry

    # --- opening and leaving -----------------------------------------------
    def open(self, language: str, large_text: bool, now: float) -> None:
        """A person tapped "Enrol a card" on the touchscreen."""
        self.language = language if language in self.languages else self.language
        self.large_text = large_text
        self.countdown = None
        self.activity(now)
        self._run(self.flow.start())

    def reset(self) -> None:
        """Wipe everything (code, ticket, language) and hand the screen back."""
        self._run(self.flow.leave())
        self._forget_person()
        self.on_exit()

    def cancel(self, now: float) -> None:
        self.activity(now)
        self.reset()

    def done(self, now: float) -> None:
        """OK on the result screen."""
        self.activity(now)
        self.reset()

    def retry(self, now: float) -> None:
        self.activity(now)
        self._run(self.flow.retry())

    # --- inputs ------------------------------------------------------------
    def tick(self, now: float) -> None:
        step = self.flow.step
        if step in RESULTS:
            if self._idle_seconds(now) >= RESULT_SECONDS:
                self.reset()
        elif step in INTERACTIVE and self._idle_expired(now):
            self.reset()

    def key(self, key: str, now: float) -> None:
        if self._repeated_tap(key, now):
            return
        self.activity(now)
        self._run(self.flow.key(key))

    def card(self, seen: CardSeen, now: float) -> None:
        """A card identified by :class:`kiosk.cards.CardFeed` (on the UI loop)."""
        self.activity(now)
        self._run(self.flow.card(seen))

    def redeemed(self, generation: int, result: Redeemed, now: float) -> None:
        """The worker's answer to the code (on the UI loop)."""
        if generation == self.flow.generation:
            self._answered(now)
        requests = self.flow.redeemed(generation, result)
        if self.flow.language in self.languages and generation == self.flow.generation:
            self.language = self.flow.language
        self._run(requests)

    def sent(self, generation: int, result: Sent, now: float) -> None:
        """The worker's answer to the card (on the UI loop)."""
        if generation == self.flow.generation:
            self._answered(now)
        self._run(self.flow.sent(generation, result))

    # --- internals ---------------------------------------------------------
    def _answered(self, now: float) -> None:
        # The person waited for this answer: their idle time starts now, and
        # a result screen then stays RESULT_SECONDS.
        self.countdown = None
        self._last_activity = now

    def _run(self, requests: list[Request]) -> None:
        for request in requests:
            self.submit(request)
        if self.flow.step != EnrolmentStep.DONE:
            self.screen = self._screen()
            self._changed()

    def _screen(self) -> Screen:
        flow, t = self.flow, self.t
        name = flow.step.screen
        if flow.step == EnrolmentStep.ENROLLED:
            words = tx.ALREADY_ENROLLED if flow.status == "already_enrolled" else tx.ENROLLED
            return Screen(name, t(words.title), t(words.body), t(words.next_step), success=True)
        if flow.step == EnrolmentStep.REFUSED:
            words = tx.outcome_words(flow.refusal)
            minutes = -(-(flow.retry_after_seconds or 300) // 60)
            return Screen(name, t(words.title), t(words.body), t(words.next_step, minutes=minutes))
        wait = tx.SENDING if flow.step == EnrolmentStep.SENDING else tx.CHECKING_CODE
        return Screen(name, title=t(wait) if name == EnrolmentScreen.WAIT else "")
