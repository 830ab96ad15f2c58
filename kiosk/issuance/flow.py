"""The certificate issuance flow at a counter kiosk, in plain Python.

No Kivy, no I/O: the flow is driven by method calls (the card, keys, choices,
results of background work, clock ticks) and tells its observer what to
show. Slow work is asked for by handing a request (:mod:`kiosk.issuance.model`)
to ``submit``; its result comes back through a method with the request's
``generation``, and results of an earlier person's session are dropped.

Steps: attract → language → place the card → checking (validity and PIN
tries read before anything else) → PIN → kinds → options → copies →
confirm → purchase (order, payment, printing: the orchestrator) → take the
card (with a sound, until it is removed) → thank you → attract.

Privacy: the PIN lives only in ``_pin`` while it is typed, shown as dots,
and leaves this object once, inside the :class:`OpenSession` request; every
reset, abort and timeout wipes it with the choices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo
from enum import StrEnum
from typing import Any

from contracts.issuance import KindOut, SessionOut
from kiosk.i18n import is_japanese, own_translation
from kiosk.issuance import texts as tx
from kiosk.issuance.model import (
    Alert,
    CardCheck,
    CardKind,
    CloseSession,
    OpenSession,
    Purchase,
    PurchaseProgress,
    PurchaseResult,
    PurchaseStatus,
    ReadCard,
    Record,
    Request,
    SessionResult,
    SessionStatus,
)
from kiosk.touch.session import IDLE_SECONDS, TouchSession, dots, edit_digits
from kiosk.touch.staff_texts import staff_lines
from kiosk.touch.staffcall import CallPhase, CallStatus, StaffCaller
from sync.config import StaffCallSection


class IssuanceStep(StrEnum):
    """Where the person is in the flow (``IssuanceFlow.screen.name``)."""

    ATTRACT = "attract"
    LANGUAGE = "language"
    PLACE_CARD = "place_card"
    CHECKING = "checking"  # the card's kind, validity and PIN tries are read
    PIN = "pin"
    VERIFYING = "verifying"  # challenge, card signature, session at central
    KINDS = "kinds"
    OPTIONS = "options"
    COPIES = "copies"
    CONFIRM = "confirm"
    ORDERING = "ordering"
    PAYING = "paying"
    ISSUING = "issuing"
    PRINTING = "printing"
    TAKE_CARD = "take_card"
    THANKS = "thanks"
    NOTICE = "notice"
    STAFF = "staff"  # staff were called (kiosk.touch.staffcall)

    @property
    def screen(self) -> IssuanceScreen:
        """The screen that shows this step: the steps waiting for background
        work share the wait screen."""
        return IssuanceScreen.WAIT if self in WAITING else IssuanceScreen(self.value)


class IssuanceScreen(StrEnum):
    """The issuance touchscreen's screens (one module and ``.kv`` each)."""

    ATTRACT = "attract"
    LANGUAGE = "language"
    PLACE_CARD = "place_card"
    WAIT = "wait"
    PIN = "pin"
    KINDS = "kinds"
    OPTIONS = "options"
    COPIES = "copies"
    CONFIRM = "confirm"
    PRINTING = "printing"
    TAKE_CARD = "take_card"
    THANKS = "thanks"
    NOTICE = "notice"
    STAFF = "staff"


PIN_LENGTH = 4
RESULT_SECONDS = 10.0  # notices and thank-you, then the attract screen
ALERT_EVERY_SECONDS = 4.0  # the "take your card" sound repeats

# Steps before the purchase: removing the card here aborts the session.
BEFORE_PURCHASE = frozenset(
    {
        IssuanceStep.CHECKING,
        IssuanceStep.PIN,
        IssuanceStep.VERIFYING,
        IssuanceStep.KINDS,
        IssuanceStep.OPTIONS,
        IssuanceStep.COPIES,
        IssuanceStep.CONFIRM,
    }
)
# Steps where nobody waits for background work: the idle timeout applies.
INTERACTIVE = frozenset(
    {
        IssuanceStep.LANGUAGE,
        IssuanceStep.PLACE_CARD,
        IssuanceStep.PIN,
        IssuanceStep.KINDS,
        IssuanceStep.OPTIONS,
        IssuanceStep.COPIES,
        IssuanceStep.CONFIRM,
    }
)
# Steps that wait for background work (shown on the wait screen).
WAITING = frozenset(
    {
        IssuanceStep.CHECKING,
        IssuanceStep.VERIFYING,
        IssuanceStep.ORDERING,
        IssuanceStep.PAYING,
        IssuanceStep.ISSUING,
    }
)
# Central's refusal codes -> the notice shown (and the event's reason).
REFUSAL_NOTICES = {
    "certificate_expired": "card_expired",
    "certificate_revoked": "certificate_revoked",
    "resident_unknown": "resident_unknown",
    "use_counter": "use_counter",
    "outside_hours": "outside_hours",
    "revocation_unavailable": "central_unreachable",
}
PRINTER_NOTICES = {
    "out_of_paper": "printer_out_of_paper",
    "jammed": "printer_jammed",
    "offline": "printer_offline",
}


@dataclass
class Screen:
    """What a screen shows, already translated; ``notice`` names the failure."""

    name: IssuanceStep
    notice: str = ""
    title: str = ""
    body: str = ""
    next_step: str = ""


@dataclass
class IssuanceFlow(TouchSession):
    submit: Callable[[Request], None]
    timezone: tzinfo
    screen: Screen = field(default_factory=lambda: Screen(IssuanceStep.ATTRACT))
    card_present: bool = False
    tries_left: int | None = None
    pin_error: bool = False
    session: SessionOut | None = None
    kind: KindOut | None = None
    options: dict[str, str] = field(default_factory=dict)
    copies: int = 1
    progress: float = 0.0
    generation: int = 0
    # Calls staff through central; None: the staff screen says where to go.
    staff: StaffCaller | None = None
    _pin: str = ""
    _last_alert: float = 0.0
    _paid_total: int = 0
    _before_staff: IssuanceStep = IssuanceStep.ATTRACT

    # --- what the screens read -------------------------------------------
    @property
    def pin_dots(self) -> str:
        return dots(self._pin, PIN_LENGTH)

    @property
    def last_try(self) -> bool:
        """One more wrong PIN blocks the card: the screen warns clearly."""
        return self.tries_left == 1

    @property
    def has_pin(self) -> bool:
        return bool(self._pin)

    @property
    def kinds(self) -> list[KindOut]:
        """What this resident may order now (kinds closed now are left out)."""
        return [k for k in self.session.kinds if k.open_now] if self.session else []

    @property
    def total_yen(self) -> int:
        return self.kind.fee_yen * self.copies if self.kind else 0

    def kind_name(self, kind: KindOut) -> tuple[str, str]:
        """A certificate's Japanese name (its title on paper) and, in any
        other language than Japanese, its name in that language to show
        beside it (the English label when the catalogue lacks it)."""
        if is_japanese(self.language):
            return kind.label_ja, ""
        return kind.label_ja, self._from_english(kind.label_en)

    def label(self, item: Any) -> str:
        """An option's label in the current language."""
        if is_japanese(self.language):
            return str(item.label_ja)
        return self._from_english(str(item.label_en))

    def choice_label(self, option: Any, choice: str) -> str:
        if is_japanese(self.language):
            return str(option.choice_labels_ja.get(choice, choice))
        return self._from_english(str(option.choice_labels_en.get(choice, choice)))

    def _from_english(self, english: str) -> str:
        """Central's English label in the person's language, if its catalogue
        has it; central's own text otherwise."""
        return own_translation(self.language, english) or english

    # --- touches and the clock ---------------------------------------------
    def tick(self, now: float) -> None:
        name = self.screen.name
        if name == IssuanceStep.STAFF:
            self._tick_staff(now)
        elif name == IssuanceStep.TAKE_CARD:
            if now - self._last_alert >= ALERT_EVERY_SECONDS:
                self._last_alert = now
                self.submit(Alert(self.generation))
        elif name in (IssuanceStep.NOTICE, IssuanceStep.THANKS):
            if self._idle_seconds(now) >= RESULT_SECONDS:
                self._after_result()
        elif name in INTERACTIVE and self._idle_expired(now):
            self._abort("idle")
            self.reset()
            if self.card_present:  # nobody walks away leaving a card behind
                self._go(IssuanceStep.TAKE_CARD)

    def start(self, now: float) -> None:
        self.activity(now)
        self._go(IssuanceStep.LANGUAGE)

    def open_language(self, now: float) -> None:
        self.start(now)

    def choose_language(self, language: str, now: float) -> None:
        self.activity(now)
        if language in self.languages:
            self.language = language
        self._go(IssuanceStep.PLACE_CARD)
        if self.card_present:
            self._read_card()

    # --- the card ------------------------------------------------------------
    def card_placed(self, now: float) -> None:
        self.card_present = True
        self.activity(now)
        if self.screen.name == IssuanceStep.ATTRACT:
            self._go(IssuanceStep.PLACE_CARD)
        if self.screen.name == IssuanceStep.PLACE_CARD:
            self._read_card()

    def card_removed(self, now: float) -> None:
        self.card_present = False
        self.activity(now)
        name = self.screen.name
        if name == IssuanceStep.TAKE_CARD:
            self._go(IssuanceStep.THANKS)
        elif name in BEFORE_PURCHASE:
            self._abort("card_removed")
            self._notice("card_removed")

    def card_checked(self, generation: int, check: CardCheck) -> None:
        if generation != self.generation or self.screen.name != IssuanceStep.CHECKING:
            return
        if check.kind is CardKind.REMOVED:
            self.card_present = False
            self._go(IssuanceStep.PLACE_CARD)
        elif check.kind is CardKind.UNREADABLE:
            self._refuse("card_unreadable")
        elif check.kind is CardKind.OTHER:
            self._refuse("not_mynumber")
        elif check.expired:
            self._refuse("card_expired")
        elif not check.tries_left:  # 0 or unknown: never send a PIN
            self._refuse("pin_blocked")
        else:
            self.tries_left = check.tries_left
            self.pin_error = False
            self._pin = ""
            self._go(IssuanceStep.PIN)

    # --- the PIN -----------------------------------------------------------
    def key(self, key: str, now: float) -> None:
        """A keypad key: a digit, "clear" or "ok"."""
        if self._repeated_tap(key, now):
            return
        self.activity(now)
        if self.screen.name != IssuanceStep.PIN:
            return
        if key == "ok" and len(self._pin) == PIN_LENGTH:
            pin, self._pin = self._pin, ""
            self._go(IssuanceStep.VERIFYING)
            self.submit(OpenSession(self.generation, pin))
            return
        self._pin = edit_digits(self._pin, key, PIN_LENGTH)
        self._changed()

    def session_result(self, generation: int, result: SessionResult) -> None:
        if generation != self.generation or self.screen.name != IssuanceStep.VERIFYING:
            if result.session is not None:  # opened for someone who left
                self.submit(CloseSession(generation, result.session.session_id))
            return
        status = result.status
        if status is SessionStatus.OPEN and result.session is not None:
            self.session = result.session
            if not self.kinds:
                self._refuse("use_counter")
            else:
                self._go(IssuanceStep.KINDS)
        elif status is SessionStatus.WRONG_PIN and result.tries_left:
            self.tries_left, self.pin_error = result.tries_left, True
            self._record("issuance.pin_wrong", tries_left=result.tries_left)
            self._go(IssuanceStep.PIN)  # waits for the person: never an automatic retry
        elif status in (SessionStatus.WRONG_PIN, SessionStatus.BLOCKED):
            self._refuse("pin_blocked")
        elif status is SessionStatus.EXPIRED:
            self._refuse("card_expired")
        elif status is SessionStatus.CARD_REMOVED:
            self.card_present = False
            self._abort("card_removed")
            self._notice("card_removed")
        elif status is SessionStatus.UNREACHABLE:
            self._record("issuance.central_unreachable", step="session")
            self._notice("central_unreachable")
        elif status is SessionStatus.CARD_ERROR:
            self._refuse("card_unreadable")
        else:
            self._refuse_code(result.code, result)

    # --- choices -----------------------------------------------------------
    def choose_kind(self, kind_id: str, now: float) -> None:
        self.activity(now)
        kind = next((k for k in self.kinds if k.id == kind_id), None)
        if self.screen.name != IssuanceStep.KINDS or kind is None:
            return
        self.kind = kind
        self.options = {o.id: o.default for o in kind.options}  # the least data
        self.copies = 1
        self._go(IssuanceStep.OPTIONS if kind.options else IssuanceStep.COPIES)

    def set_option(self, option_id: str, value: str, now: float) -> None:
        self.activity(now)
        option = (
            next((o for o in self.kind.options if o.id == option_id), None) if self.kind else None
        )
        if self.screen.name != IssuanceStep.OPTIONS or option is None:
            return
        allowed = option.choices if option.kind == "choice" else ["true", "false"]
        if value in allowed:
            self.options[option_id] = value
            self._changed()

    def change_copies(self, delta: int, now: float) -> None:
        self.activity(now)
        if self.screen.name == IssuanceStep.COPIES and self.kind is not None:
            self.copies = min(max(1, self.copies + delta), self.kind.max_copies)
            self._changed()

    def next(self, now: float) -> None:
        """ "Next" on options and copies; "pay and print" on the confirmation."""
        self.activity(now)
        name = self.screen.name
        if name == IssuanceStep.OPTIONS:
            self._go(IssuanceStep.COPIES)
        elif name == IssuanceStep.COPIES:
            self._go(IssuanceStep.CONFIRM)
        elif name == IssuanceStep.CONFIRM and self.kind and self.session and self.card_present:
            self._paid_total = self.total_yen
            self.progress = 0.0
            self._go(IssuanceStep.ORDERING)
            self.submit(
                Purchase(
                    self.generation,
                    self.session.session_id,
                    self.kind.id,
                    self.copies,
                    dict(self.options),
                    self.total_yen,
                )
            )

    def back(self, now: float) -> None:
        """One step back; on the first steps it cancels."""
        self.activity(now)
        if self.screen.name == IssuanceStep.STAFF:
            if self.staff is not None:
                self.staff.end("back")
            self._leave_staff()
            return
        previous = {
            IssuanceStep.COPIES: IssuanceStep.OPTIONS
            if self.kind and self.kind.options
            else IssuanceStep.KINDS,
            IssuanceStep.OPTIONS: IssuanceStep.KINDS,
            IssuanceStep.CONFIRM: IssuanceStep.COPIES,
        }.get(self.screen.name)
        if previous is not None:
            self._go(previous)
        elif self.screen.name in (IssuanceStep.LANGUAGE, IssuanceStep.PLACE_CARD):
            self.reset()
        elif self.screen.name in (IssuanceStep.NOTICE, IssuanceStep.THANKS):
            self._after_result()
        else:
            self.cancel(now)

    def cancel(self, now: float) -> None:
        self.activity(now)
        if self.screen.name in BEFORE_PURCHASE:
            self._abort("cancelled")
            self._notice("cancelled")
        elif self.screen.name in INTERACTIVE:
            self.reset()

    def continue_session(self, now: float) -> None:
        self.activity(now)

    # --- calling staff -------------------------------------------------------
    def call_staff(self, now: float) -> None:
        """From any screen; Back returns to where the person was."""
        self.activity(now)
        if self.screen.name != IssuanceStep.STAFF:
            self._before_staff = self.screen.name
        if self.staff is None:
            self._show_staff(CallStatus("", CallPhase.UNREACHABLE, now))
            return
        self._show_staff(self.staff.call(now))

    def _tick_staff(self, now: float) -> None:
        status = self.staff.poll(now) if self.staff is not None else None
        if status is not None and status.phase is CallPhase.FINISHED:
            self._leave_staff()  # staff are with the person
            return
        if status is not None:
            self._show_staff(status)
        if self.staff is not None and status and status.phase is not CallPhase.UNREACHABLE:
            # Waiting for staff is not being idle: ask later than elsewhere.
            now -= max(0.0, self.staff.settings.wait_seconds - IDLE_SECONDS)
        if self._idle_expired(now):
            self._abort("idle")
            self.reset()
            if self.card_present:  # nobody walks away leaving a card behind
                self._go(IssuanceStep.TAKE_CARD)

    def _leave_staff(self) -> None:
        back = self._before_staff
        if back in (IssuanceStep.NOTICE, IssuanceStep.THANKS):
            self._after_result()  # their words are gone; what follows them comes now
        elif back in (IssuanceStep.CHECKING, IssuanceStep.VERIFYING):
            # Their answer may have come meanwhile and been dropped (a session
            # it opened is closed): start again from the card.
            self._pin = ""
            self._go(IssuanceStep.PLACE_CARD)
            if self.card_present:
                self._read_card()
        else:
            self._go(back)

    def _show_staff(self, status: CallStatus) -> None:
        settings = self.staff.settings if self.staff is not None else StaffCallSection()
        title, body, next_step = staff_lines(status, settings, self.t)
        screen = Screen(IssuanceStep.STAFF, title=title, body=body, next_step=next_step)
        if screen != self.screen:
            self.screen = screen
            self._changed()

    # --- the purchase (orchestrator) -----------------------------------------
    def purchase_progress(self, generation: int, progress: PurchaseProgress) -> None:
        if generation != self.generation:
            return
        self.progress = progress.fraction
        stage = progress.stage
        self._go(IssuanceStep(stage.value))

    def purchase_done(self, generation: int, result: PurchaseResult) -> None:
        if generation != self.generation:
            return
        self._end_session()
        status = result.status
        if status is PurchaseStatus.PRINTED:
            self.progress = 1.0
            self._wipe_choices()
            self._go(IssuanceStep.TAKE_CARD if self.card_present else IssuanceStep.THANKS)
            return
        notice = {
            PurchaseStatus.DECLINED: "payment_declined",
            PurchaseStatus.PAYMENT_UNAVAILABLE: "payment_unavailable",
            PurchaseStatus.UNREACHABLE: "central_unreachable",
            PurchaseStatus.PRINT_FAILED: "print_failed",
            PurchaseStatus.PRINTER_UNAVAILABLE: PRINTER_NOTICES.get(
                result.reason, "printer_offline"
            ),
        }.get(status)
        if notice is None:  # refused by central
            notice = REFUSAL_NOTICES.get(result.reason, "service_error")
        if result.settlement_failed:  # charged, and the terminal would not return it
            notice = "payment_not_returned"
        self._wipe_choices()
        self._notice(notice, opens_at=result.opens_at)

    # --- reset ---------------------------------------------------------------
    def reset(self) -> None:
        """Back to the attract screen with nothing of the last person kept."""
        if self.staff is not None:
            self.staff.end("left")
        self._end_session()
        self._wipe_choices()
        self.generation += 1
        self.tries_left = None
        self.pin_error = False
        self._forget_person()
        self._go(IssuanceStep.ATTRACT)

    # --- internals -----------------------------------------------------------
    def _read_card(self) -> None:
        self._go(IssuanceStep.CHECKING)
        self.submit(ReadCard(self.generation))

    def _wipe_choices(self) -> None:
        self._pin = ""
        self.kind = None
        self.options = {}
        self.copies = 1
        self.progress = 0.0

    def _end_session(self) -> None:
        if self.session is not None:
            self.submit(CloseSession(self.generation, self.session.session_id))
            self.session = None

    def _abort(self, reason: str) -> None:
        """Give up before the purchase: wipe, close the session, record it."""
        if self.screen.name not in BEFORE_PURCHASE and not self.has_pin and self.session is None:
            return  # nothing started: no event for an empty screen timing out
        self._record("issuance.aborted", step=self.screen.name.value, reason=reason)
        self._end_session()
        self._wipe_choices()

    def _refuse(self, reason: str, **values: object) -> None:
        self._record("issuance.refused", reason=reason)
        self._end_session()
        self._wipe_choices()
        self._notice(reason, **values)

    def _refuse_code(self, code: str, result: SessionResult) -> None:
        notice = REFUSAL_NOTICES.get(code, "service_error")
        if notice == "central_unreachable":
            self._record("issuance.central_unreachable", step="session")
            self._notice(notice)
            return
        self._record("issuance.refused", reason=code or "unknown")
        self._end_session()
        self._wipe_choices()
        self._notice(notice, opens_at=result.opens_at)

    def _notice(self, notice: str, **values: Any) -> None:
        words = tx.NOTICES[notice]
        opens_at = values.get("opens_at")
        shown = {
            "opens_at": opens_at.astimezone(self.timezone).strftime("%Y-%m-%d %H:%M")
            if opens_at is not None
            else "-",
            "total": self._paid_total,
        }
        self.screen = Screen(
            IssuanceStep.NOTICE,
            notice=notice,
            title=self.t(words.title, **shown),
            body=self.t(words.body, **shown),
            next_step=self.t(words.next_step, **shown),
        )
        self.countdown = None
        self._changed()

    def _after_result(self) -> None:
        """A notice or the thank-you is done: a card still on the reader must go."""
        if self.card_present:
            self._go(IssuanceStep.TAKE_CARD)
        else:
            self.reset()

    def _record(self, type_: str, **data: Any) -> None:
        self.submit(Record(self.generation, type_, data))

    def _go(self, name: IssuanceStep) -> None:
        if name == IssuanceStep.TAKE_CARD and self.screen.name != IssuanceStep.TAKE_CARD:
            self._last_alert = self._last_activity
            self.submit(Alert(self.generation))
        self.screen = Screen(name)
        self.countdown = None
        self._changed()
