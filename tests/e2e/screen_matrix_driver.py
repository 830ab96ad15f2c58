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
on the live session. One JSON line per checked state:
``{"state": ..., "language": ..., "large": ..., "violations": [...]}``, and
``{"done": true, "states": N, "seconds": S}`` at the end.
"""

from __future__ import annotations

import json
import os
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

from kiosk.i18n import available_languages  # noqa: E402
from kiosk.touch import theme  # noqa: E402
from kiosk.touch.app import PublicApp  # noqa: E402
from kiosk.touch.session import TouchSession  # noqa: E402
from tests.e2e.layout_check import check_tree  # noqa: E402

# States entered through the real flow and its background thread.
SLOW_STATES = {"pin", "kinds"}
# A state: (name, enter it, the session whose language and size to switch).
State = tuple[str, Callable[[], object], Callable[[], TouchSession]]


class MatrixRun:
    def __init__(self, app: PublicApp, states: Callable[[], Iterator[State]]) -> None:
        self.app = app
        self.states = states
        self.artifacts = Path(JOB["artifacts"])
        self.shots = JOB.get("shots", [])
        self.count = 0
        self.started = time.monotonic()
        self.signature: tuple[Any, ...] = ()

    def emit(self, **values: Any) -> None:
        print(json.dumps(values, ensure_ascii=False), flush=True)

    def start(self, *_args: Any) -> None:
        self.app.root.transition = NoTransition()
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
        languages = available_languages()
        for name, enter, session_of in self.states():
            enter()
            if name in SLOW_STATES:  # the issuance orchestrator's thread answers
                for _ in range(12):
                    yield 0.05
            yield from self.settle()
            for language in languages:
                for large in (False, True):
                    session = session_of()
                    session.language, session.large_text = language, large
                    session._changed()
                    yield from self.settle()
                    self.check(name, language, large)
        # The high-contrast palette in one language per state kind is enough
        # for geometry (colours do not move widgets); screenshots show it.
        yield from self.contrast_pass()

    def contrast_pass(self) -> Iterator[float]:
        session = self.app.active_session
        session.high_contrast = True
        session.language = "ja"
        session._changed()
        yield from self.settle()
        self.check("high_contrast", "ja", False, shot=True)
        session.high_contrast = False
        session._changed()

    def settle(self) -> Iterator[float]:
        """Frames until the screen's geometry stops changing (at most 12)."""
        previous: tuple[Any, ...] = ()
        for _ in range(12):
            yield 0
            current = self.geometry()
            if current == previous:
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

    def check(self, name: str, language: str, large: bool, shot: bool = False) -> None:
        self.count += 1
        screen = self.app.root.current_screen
        report = check_tree(screen, theme.TARGET_MM)
        record: dict[str, Any] = {
            "state": name, "screen": screen.name, "language": language, "large": large,
            "violations": report.violations, "scrolls": report.scrolls,
        }  # fmt: skip
        if shot or self.shots == "all" or language in self.shots:
            size = "large" if large else "normal"
            path = self.artifacts / f"{PROFILE.name}-{name}-{language}-{size}.png"
            record["shot"] = Window.screenshot(str(path))
        self.emit(**record)


def checkin_app(config_path: str) -> tuple[PublicApp, Callable[[], Iterator[State]]]:
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

    def states() -> Iterator[State]:
        now = time.monotonic()
        s = app.session
        yield "attract", lambda: s.back(now), host
        yield "language", lambda: s.open_language(now), host
        yield "keypad", lambda: (s.open_keypad(now), s.key("1", now + 1), countdown(s)), host
        yield "result", lambda: (s.back(now), s.card_unusable(True, now)), host
        yield "staff", lambda: s.call_staff(now), host
        yield "enrol_code", lambda: (s.back(now), enrol_step(EnrolmentStep.CODE_ENTRY)(),
                                     countdown(mode.session)), enrol  # fmt: skip
        yield "enrol_wait", enrol_step(EnrolmentStep.REDEEMING), enrol
        yield "enrol_card", enrol_step(EnrolmentStep.TAP_CARD, card_notice="unsupported"), enrol
        yield "enrol_result", enrol_step(EnrolmentStep.REFUSED, refusal="code_invalid"), enrol
        assert CheckinScreen.ATTRACT

    return app, states


def issuance_app(config_path: str) -> tuple[PublicApp, Callable[[], Iterator[State]]]:
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

    def states() -> Iterator[State]:
        now = time.monotonic()
        yield "attract", go(IssuanceStep.ATTRACT), lambda: flow
        yield "language", go(IssuanceStep.LANGUAGE), lambda: flow
        yield "place_card", lambda: (go(IssuanceStep.PLACE_CARD)(), countdown()), lambda: flow
        yield "wait", go(IssuanceStep.VERIFYING), lambda: flow
        # The real PIN screen: the card read through the orchestrator's thread.
        yield "pin", lambda: (flow.start(now), flow.choose_language("ja", now),
                              flow.card_placed(now)), lambda: flow  # fmt: skip
        yield (
            "pin_last_try",
            lambda: (go(IssuanceStep.PIN, tries_left=1)(), countdown()),
            lambda: flow,
        )
        yield "kinds", lambda: (flow.key("1", now + 1), flow.key("2", now + 2),
                                flow.key("3", now + 3), flow.key("4", now + 4),
                                flow.key("ok", now + 5)), lambda: flow  # fmt: skip
        yield "options", lambda: flow.choose_kind(flow.kinds[0].id, now + 6), lambda: flow
        yield "copies", go(IssuanceStep.COPIES), lambda: flow
        yield "confirm", go(IssuanceStep.CONFIRM), lambda: flow
        yield "printing", go(IssuanceStep.PRINTING, progress=0.4), lambda: flow
        yield "take_card", go(IssuanceStep.TAKE_CARD), lambda: flow
        yield "thanks", go(IssuanceStep.THANKS), lambda: flow
        yield "notice", go(IssuanceStep.NOTICE), lambda: flow

    return app, states


def main() -> int:
    Path(JOB["artifacts"]).mkdir(parents=True, exist_ok=True)
    build = checkin_app if JOB["app"] == "checkin" else issuance_app
    app, states = build(JOB["config"])
    run = MatrixRun(app, states)
    app.bind(on_start=lambda *_a: Clock.schedule_once(run.start, 0))
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
