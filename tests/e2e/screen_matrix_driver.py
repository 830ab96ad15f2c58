# mypy: disable-error-code="func-returns-value"
# (states are entered by lambdas calling several session methods in a tuple)
"""Lays out every screen of one touchscreen in every language and text size,
on one display profile, and checks each from its geometry.

``python -m tests.e2e.screen_matrix_driver JOB.json``: ``profile`` (a name in
:mod:`kiosk.touch.profiles`; the parent sets ``KIVY_DPI`` and an Xvfb of that
size), ``app`` ("checkin": check-in with card enrolment attached, or
"issuance"), ``config``, ``artifacts``, ``shots`` (languages to screenshot,
or "all"). The app is built once; each state is entered by setting the
session's state directly, then language, text size and palette are switched
on the live session, in every language with a catalogue and in a pseudo
language of long words (``x-long``: :func:`pseudo_long`). One JSON line per checked state:
``{"state": ..., "language": ..., "large": ..., "violations": [...]}``, and
``{"done": true, "states": N, "seconds": S}`` at the end. ``languages``
limits the languages (the extra 800x600 profile checks ja and en only).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("KIVY_NO_ARGS", "1")
from kivy.config import Config

from kiosk.touch.profiles import profile

JOB = json.loads(Path(sys.argv[1]).read_text()) if __name__ == "__main__" else {}
PROFILE = profile(JOB.get("profile", "pi7"))
Config.set("graphics", "width", str(PROFILE.width))
Config.set("graphics", "height", str(PROFILE.height))
Config.set("graphics", "resizable", "0")
Config.set("graphics", "maxfps", "0")
Config.set("input", "mouse", "")

from kivy.clock import Clock  # noqa: E402
from kivy.core.window import Window  # noqa: E402
from kivy.uix.screenmanager import NoTransition  # noqa: E402

import kiosk.touch.session as touch_session  # noqa: E402
from kiosk.i18n import available_languages, translate  # noqa: E402
from kiosk.touch import theme  # noqa: E402
from kiosk.touch.app import PublicApp  # noqa: E402
from kiosk.touch.session import TouchSession  # noqa: E402
from tests.e2e.layout_check import check_tree  # noqa: E402

# A pseudo-language for long translations before they exist: English with
# every word half as long again and word pairs joined (German-like compounds
# that cannot be wrapped). Only this test process knows it.
PSEUDO = "x-long"


def pseudo_long(text: str) -> str:
    def stretch(words: str) -> str:
        longer = re.sub(r"[A-Za-z]+", lambda m: m[0] + m[0][: (len(m[0]) + 1) // 2], words)
        return re.sub(r"(\w+) (\w+)", lambda m: m[1] + m[2].lower(), longer)

    # Placeholders ({seconds}) stay as they are.
    pieces = re.split(r"(\{[^}]*\})", text)
    return "".join(p if p.startswith("{") else stretch(p) for p in pieces)


def with_pseudo_language() -> None:
    def languages() -> list[str]:
        return [*available_languages(), PSEUDO]

    def translated(language: str, message: str, **values: object) -> str:
        if language != PSEUDO:
            return translate(language, message, **values)
        text = pseudo_long(translate("en", message))
        return text.format(**values) if values else text

    # The session module's own names: what every view model translates with.
    setattr(touch_session, "available_languages", languages)  # noqa: B010
    setattr(touch_session, "translate", translated)  # noqa: B010


# Drawing a 1920x1080 frame in software GL costs more than laying it out and
# checking it: frames are drawn only for screenshots.
DRAWING = {"on": False}


def skip_draw(*_args: Any) -> bool:
    return not DRAWING["on"]  # True stops the event: nothing is drawn


# A state: (name, enter it, the session whose language and size to switch).
State = tuple[str, Callable[[], object], Callable[[], TouchSession]]


class MatrixRun:
    def __init__(self, app: PublicApp, states: Callable[[], Iterator[State]],
                 prepare: Callable[[], Iterator[float]]) -> None:  # fmt: skip
        self.app = app
        self.states = states
        self.prepare = prepare
        self.artifacts = Path(JOB["artifacts"])
        self.shots = JOB.get("shots", [])
        self.count = 0
        self.started = time.monotonic()
        self.signature: tuple[Any, ...] = ()

    def emit(self, **values: Any) -> None:
        print(json.dumps(values, ensure_ascii=False), flush=True)

    def start(self, *_args: Any) -> None:
        self.app.root.transition = NoTransition()
        Window.fbind("on_draw", skip_draw)
        Window.fbind("on_flip", skip_draw)
        self.steps = self.run()
        Clock.schedule_once(self.step, 0.3)

    def step(self, *_args: Any) -> None:
        try:
            wait = next(self.steps)
        except StopIteration:
            self.emit(
                done=True, states=self.count, seconds=round(time.monotonic() - self.started, 1)
            )
            self.app.stop()
            return
        except Exception as exc:  # reported, not swallowed: the test fails on it
            self.emit(error=f"{type(exc).__name__}: {exc}")
            self.app.stop()
            return
        Clock.schedule_once(self.step, wait)

    def run(self) -> Iterator[float]:
        """Language and text size outermost: switching them re-renders the
        words of every screen, switching the state only one screen's."""
        yield from self.prepare()
        only = JOB.get("languages")  # a subset, for the extra svga profile
        every = [*available_languages(), *([PSEUDO] if JOB.get("pseudo", True) else [])]
        for language in [x for x in every if not only or x in only]:
            for large in (False, True):
                yield from self.each_state(language, large, high_contrast=False)
        # Colours do not move widgets, but a palette is checked like a size.
        yield from self.each_state("ja", False, high_contrast=True)

    def each_state(self, language: str, large: bool, high_contrast: bool) -> Iterator[float]:
        for name, enter, session_of in self.states():
            enter()
            session = session_of()
            wanted = (language, large, high_contrast)
            if (session.language, session.large_text, session.high_contrast) != wanted:
                session.language, session.large_text, session.high_contrast = wanted
                session._changed()
            yield from self.settle()
            shot = self.shots == "all" or language in self.shots
            if shot:
                yield from self.draw()
            self.check(name + ("-contrast" if high_contrast else ""), language, large, shot)

    def draw(self) -> Iterator[float]:
        """Real frames for a screenshot (checks alone need no drawing)."""
        DRAWING["on"] = True
        Window.canvas.ask_update()
        yield 0

    def settle(self) -> Iterator[float]:
        """Frames until the screen's geometry has not changed for two (at
        most 20): a texture or layout trigger fires one frame after the change
        that caused it."""
        previous: tuple[Any, ...] = ()
        stable = 0
        for _ in range(20):
            yield 0
            current = self.geometry()
            stable = stable + 1 if current == previous else 0
            if stable >= 2:
                return
            previous = current

    def geometry(self) -> tuple[Any, ...]:
        screen = self.app.root.current_screen
        out: list[Any] = []
        stack = [screen]
        while stack:
            widget = stack.pop()
            out.append((*widget.pos, *widget.size, *getattr(widget, "texture_size", ())))
            stack.extend(widget.children)
        return tuple(out)

    def check(self, name: str, language: str, large: bool, shot: bool) -> None:
        self.count += 1
        screen = self.app.root.current_screen
        report = check_tree(screen, theme.TARGET_MM)
        record: dict[str, Any] = {
            "state": name, "screen": screen.name, "language": language, "large": large,
            "violations": report.violations, "scrolls": report.scrolls,
        }  # fmt: skip
        if shot:
            size = "large" if large else "normal"
            path = self.artifacts / f"{PROFILE.name}-{JOB['app']}-{name}-{language}-{size}.png"
            began = time.monotonic()
            record["shot"] = Window.screenshot(str(path))
            record["shot_ms"] = round((time.monotonic() - began) * 1000)
            DRAWING["on"] = False
        self.emit(**record)


Built = tuple[PublicApp, Callable[[], Iterator[State]], Callable[[], Iterator[float]]]


class Lockdown:
    """The check-in's lockdown source (the door in lockdown when ``shut``)."""

    shut = False

    def closed(self, door: str) -> bool:
        return self.shut


def checkin_app(config_path: str) -> Built:
    from kiosk.checkin.service import CheckinResult, Outcome
    from kiosk.checkin.session import CheckinScreen, CheckinSession
    from kiosk.checkin.ui.app import KioskApp
    from kiosk.checkin.wiring import build_checkin_session, lock_for
    from kiosk.enrolment.flow import EnrolmentStep
    from kiosk.enrolment.ui.mode import enrolment_mode_for
    from sync.config import load_config
    from tests.harness.enrolment import FakeEnrolmentCentral

    config = load_config(config_path)
    factory, _close = build_checkin_session(config, lock=lock_for(config))
    mode = enrolment_mode_for(config, central=FakeEnrolmentCentral(codes={}))
    app = KioskApp(factory, "Gym (Sports centre, main hall)", mode=mode)
    assert mode is not None

    def host() -> CheckinSession:
        return app.session

    s = app.session

    def enrol() -> TouchSession:
        return mode.session

    def enrol_step(step: EnrolmentStep, **values: Any) -> Callable[[], None]:
        def enter() -> None:
            if not app.mode_active:
                app.act("mode")
            flow = mode.session.flow
            flow.step = step
            for key, value in values.items():
                setattr(flow, key, value)
            mode.session.screen = mode.session._screen()
            mode.session._changed()

        return enter

    def countdown(session: TouchSession) -> None:
        session.countdown = 12.0
        session._changed()

    def leave_mode() -> None:
        if app.mode_active:
            mode.session.reset()

    lockdown = Lockdown()
    app.session.service.lockdown = lockdown

    def closed(shut: bool) -> None:
        # Read on the session's next tick, as from the store lockctl writes.
        lockdown.shut = shut
        s.entrance_closed = shut
        s._changed()

    def states() -> Iterator[State]:
        now = time.monotonic()
        yield "attract", lambda: (leave_mode(), s.back(now), closed(False)), host
        yield "attract_closed", lambda: closed(True), host
        closed(False)
        yield "language", lambda: s.open_language(now), host
        yield "keypad", lambda: (s.open_keypad(now), s.key("1", now + 1), countdown(s)), host
        yield "result", lambda: (s.back(now), s.card_unusable(True, now)), host
        lockdown_result = CheckinResult(Outcome.LOCKDOWN, "room-a")
        yield "result_lockdown", lambda: (s.back(now), s._show_result(lockdown_result, now)), host
        yield "staff", lambda: s.call_staff(now), host
        yield "enrol_code", lambda: (enrol_step(EnrolmentStep.CODE_ENTRY)(),
                                     countdown(mode.session)), enrol  # fmt: skip
        yield "enrol_wait", enrol_step(EnrolmentStep.REDEEMING), enrol
        yield "enrol_card", enrol_step(EnrolmentStep.TAP_CARD, card_notice="unsupported"), enrol
        yield "enrol_result", enrol_step(EnrolmentStep.REFUSED, refusal="code_invalid"), enrol
        assert CheckinScreen.ATTRACT

    return app, states, lambda: iter(())


def issuance_app(config_path: str) -> Built:
    from kiosk.issuance.flow import IssuanceStep, Screen
    from kiosk.issuance.payment import SimulatedTerminal
    from kiosk.issuance.printing import FilePrinter
    from kiosk.issuance.sound import SimulatedSound
    from kiosk.issuance.ui.app import IssuanceApp
    from kiosk.issuance.wiring import build_issuance
    from kiosk.touch.app import post_to_ui
    from sync.config import load_config
    from tests.harness.fake_issuance_central import FakeCentral
    from tests.unit.issuance_fakes import FakeCard

    config = load_config(config_path)
    kit = build_issuance(
        config, post_to_ui, central=FakeCentral(config.device.id), payment=SimulatedTerminal(),
        printer=FilePrinter(Path(JOB["artifacts"]) / "spool"), cards=FakeCard(),
        sound=SimulatedSound(),
    )  # fmt: skip
    app = IssuanceApp(kit.flow, "City hall, 1st floor")
    flow = app.flow

    def go(step: IssuanceStep, **values: Any) -> Callable[[], None]:
        def enter() -> None:
            flow.countdown = None
            for key, value in values.items():
                setattr(flow, key, value)
            flow.screen = Screen(step)
            if step == IssuanceStep.NOTICE:
                flow._notice("payment_not_returned", total=1200)
                return
            flow._changed()

        return enter

    def countdown() -> None:
        flow.countdown = 12.0
        flow._changed()

    def prepare() -> Iterator[float]:
        """Once: the real flow to the options screen (card read and PIN
        checked on the orchestrator's thread), for the kinds and options."""
        now = time.monotonic()
        flow.start(now)
        flow.choose_language("ja", now)
        flow.card_placed(now)
        yield from wait_until(lambda: flow.screen.name == IssuanceStep.PIN)
        for i, key in enumerate(["1", "2", "3", "4", "ok"]):
            flow.key(key, now + i + 1)
        yield from wait_until(lambda: flow.screen.name == IssuanceStep.KINDS)
        flow.choose_kind(flow.kinds[0].id, now + 7)

    def states() -> Iterator[State]:
        f = lambda: flow  # noqa: E731 (the session every state switches)
        yield "attract", go(IssuanceStep.ATTRACT), f
        yield "language", go(IssuanceStep.LANGUAGE), f
        yield "place_card", lambda: (go(IssuanceStep.PLACE_CARD)(), countdown()), f
        yield "wait", go(IssuanceStep.VERIFYING), f
        yield "pin", go(IssuanceStep.PIN, tries_left=3), f
        yield "pin_last_try", lambda: (go(IssuanceStep.PIN, tries_left=1)(), countdown()), f
        yield "kinds", go(IssuanceStep.KINDS), f
        yield "options", go(IssuanceStep.OPTIONS), f
        yield "copies", go(IssuanceStep.COPIES), f
        yield "confirm", go(IssuanceStep.CONFIRM), f
        yield "printing", go(IssuanceStep.PRINTING, progress=0.4), f
        yield "take_card", go(IssuanceStep.TAKE_CARD), f
        yield "thanks", go(IssuanceStep.THANKS), f
        yield "notice", go(IssuanceStep.NOTICE), f

    return app, states, prepare


def wait_until(done: Callable[[], bool], seconds: float = 10.0) -> Iterator[float]:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("the flow did not get there")
        yield 0.05


def main() -> int:
    Path(JOB["artifacts"]).mkdir(parents=True, exist_ok=True)
    if JOB.get("pseudo", True):
        with_pseudo_language()
    build = checkin_app if JOB["app"] == "checkin" else issuance_app
    app, states, prepare = build(JOB["config"])
    run = MatrixRun(app, states, prepare)
    app.bind(on_start=lambda *_a: Clock.schedule_once(run.start, 0))
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
