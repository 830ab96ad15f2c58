"""Drives the real Kivy touchscreen in its own process, for end-to-end tests.

``python -m tests.e2e.ui_driver SCENARIO.json`` builds the app from a device
configuration (``config``), then runs the scenario's steps one per frame
cycle, writing one JSON line per step to stdout:

* ``{"tap": "keypad.key_1"}``: a touch down/up at the centre of the widget
  with that id on that screen, through the window's hit-testing (as a finger
  would, not by calling the handler); reports the widget's size in mm;
* ``{"card": "cr1_..."}`` / ``{"card": null, "readable": false}``: a card
  event posted from another thread, as the card reader does;
* ``{"release": true}``: let the fake enrolment central answer (scenarios
  with ``"enrolment": {"codes": {...}, "hold": true}``; without ``hold`` it
  answers at once); ``{"central": true}``: report what it received;
* ``{"wait": "result", "timeout": 5}``: until that screen is current;
* ``{"title": "...", "timeout": 5}``: until the screen's title reads that
  (reports the wall-clock time it was seen, as ``tap`` reports its own);
* ``{"notice": "...", "timeout": 5}``: until the attract screen's notice
  label (a full store disk) shows that text;
* ``{"shot": "name"}``: a screenshot into ``artifacts``;
* ``{"idle": 60}``: pretend no touch for that many seconds (moves the
  session's clock, not the wall clock);
* ``{"state": true}``: report screen, title, body and code dots;
* ``{"receive": "cmd.json"}``: put that signed command into the device
  store's ledger, as the sync agent does; ``{"finished": "<id>", "timeout":
  10}``: until the touchscreen has finished it, reporting state, code,
  message and detail, and writing its attachment to ``artifacts/<id>.png``
  (scenarios with ``"commands": true``: the app's remote-command inbox on);
* ``{"press": "KP_6"}`` and the other keypad steps of
  :mod:`tests.e2e.keypad_steps` (scenarios with ``"keypad": true``);
* ``{"insert": "felica"}`` / ``{"remove": true}``: a virtual card (profiles of
  ``cardreader.sim``) into / out of the vpcd slot on ``cards.port``; the app
  then sees it through pcscd, the card watcher and the card feed, as in the
  field (needs ``"cards": {"port": N}`` in the scenario).

The lock is the real lockctl client on the configured socket; with no
lockctl running, unlocks fail as they would in the field ("door controller
unavailable").
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("KIVY_NO_ARGS", "1")

from kivy.config import Config

# The window size a scenario asks for (panels of 800x480 up to 1280x800).
_SIZE = (
    json.loads(Path(sys.argv[1]).read_text()).get("size", [1024, 600])
    if __name__ == "__main__"
    else [1024, 600]
)
Config.set("graphics", "width", str(_SIZE[0]))
Config.set("graphics", "height", str(_SIZE[1]))
Config.set("input", "mouse", "")  # only our synthetic touches

from kivy.clock import Clock  # noqa: E402
from kivy.core.window import Window  # noqa: E402
from kivy.metrics import mm  # noqa: E402
from kivy.tests.common import UnitTestTouch  # noqa: E402

from cardreader.sim.profiles import build_card  # noqa: E402
from cardreader.sim.testpki import create_test_pki  # noqa: E402
from cardreader.sim.vpcd import VpcdLink  # noqa: E402
from demo.devpanel import DevPanel  # noqa: E402
from kiosk.cards import CardFeed, CardSeen  # noqa: E402
from kiosk.checkin.ui.app import KioskApp  # noqa: E402
from kiosk.checkin.wiring import build_checkin_session, lock_for  # noqa: E402
from kiosk.enrolment.ui.mode import enrolment_mode_for  # noqa: E402
from kiosk.reader import card_service_for  # noqa: E402
from kiosk.touch.capture import ScreenCommands  # noqa: E402
from sync.config import load_config  # noqa: E402
from tests.e2e.keypad_steps import KeypadSteps  # noqa: E402
from tests.harness.door_commands import entry, receive  # noqa: E402
from tests.harness.enrolment import FakeEnrolmentCentral  # noqa: E402

KEYCODES = {"F5": 286, "F6": 287, "F7": 288, "F8": 289}


class Driver:
    def __init__(self, app: KioskApp, steps: list[dict[str, Any]], artifacts: Path,
                 card_port: int = 0, central: FakeEnrolmentCentral | None = None,
                 ) -> None:  # fmt: skip
        self.app = app
        self.fake_enrolment = central
        self.card_port = card_port
        self.link: VpcdLink | None = None
        self.steps = steps
        self.artifacts = artifacts
        self.index = 0
        self.clock_offset = 0.0
        self.scenario: dict[str, Any] = {}
        self.keypad: KeypadSteps | None = None  # scenarios with "keypad": true
        self.store_path = Path()  # the device store (main sets it)

    def report(self, **values: Any) -> None:
        print(json.dumps({"step": self.index, **values}, ensure_ascii=False), flush=True)

    def start(self) -> None:
        # Begin after frames have been drawn, when layouts have their sizes.
        def first_frame(*_args: Any) -> None:
            Window.unbind(on_flip=first_frame)
            Clock.schedule_once(lambda _dt: self.next(), 0.5)

        Window.bind(on_flip=first_frame)
        Window.canvas.ask_update()

    def next(self) -> None:
        if self.index >= len(self.steps):
            self.report(done=True)
            self.app.stop()
            return
        step = self.steps[self.index]
        try:
            self.run(step)
        except Exception as exc:
            self.report(error=f"{type(exc).__name__}: {exc}")
            self.app.stop()

    def advance(self, delay: float = 0.15) -> None:
        self.index += 1
        Clock.schedule_once(lambda _dt: self.next(), delay)

    def card(self, step: dict[str, Any]) -> None:
        """A card event posted from another thread, as the card reader does
        (``card``), or a virtual card through pcscd (``insert``, ``remove``)."""
        if "card" not in step:
            self.vpcd(step)
            return
        ref, readable = step["card"], step.get("readable", True)
        kind = step.get("kind", "member" if ref else "unknown" if readable else "unreadable")
        seen = CardSeen(ref, kind, readable)
        threading.Thread(target=self.app.post_seen, args=(seen,)).start()
        self.advance(0.3)

    def wait_step(self, step: dict[str, Any]) -> None:
        """Until a screen (``wait``), a title (``title``) or a notice shows."""
        deadline = time.monotonic() + step.get("timeout", 5)
        if "wait" in step:
            self.wait(step["wait"], deadline)
        elif "notice" in step:
            self.wait_notice(step["notice"], deadline)
        else:
            self.wait_title(step["title"], deadline)

    def run(self, step: dict[str, Any]) -> None:
        if "tap" in step:
            self.tap(step["tap"])
        elif "receive" in step or "finished" in step:
            self.command(step)
        elif "card" in step or "insert" in step or "remove" in step:
            self.card(step)
        elif "release" in step or "central" in step:
            self.enrolment_central(step)
        elif "wait" in step or "title" in step or "notice" in step:
            self.wait_step(step)
        elif "shot" in step:
            self.shot(step["shot"])
        elif "idle" in step:
            session = self.app.active_session
            session.tick(session._last_activity + step["idle"])
            self.report(screen=self.app.view.screen, countdown=self.app.view.countdown)
            self.advance()
        elif "key" in step:
            # As a keyboard would: through the window's key event.
            Window.dispatch("on_key_down", KEYCODES[step["key"]], 0, "", [])
            self.report(key=step["key"])
            self.advance(0.3)
        elif self.keypad is not None and self.keypad.handles(step):
            self.keypad.run(step)
        elif "panel" in step:
            panel = self.app.dev_panel
            assert panel is not None, "scenario needs dev_panel"
            panel._poll_relay(0)
            self.report(panel=panel.label.text)
            self.advance()
        elif "state" in step:
            v = self.app.view
            mode = self.app.mode.view if self.app.mode_active and self.app.mode else None
            self.report(
                screen=v.screen, title=v.title, body=v.body, next=v.next_step, dots=v.code_dots,
                code=mode.code_text if mode else "", notice=mode.card_notice if mode else "",
                language=self.app.active_session.language,
                choices=[v.large_text, v.high_contrast, v.more_time],
                page=list(v.c_page), closed=getattr(v, "t_closed", ""),
            )  # fmt: skip
            self.advance()
        else:
            raise ValueError(f"unknown step {step}")

    def vpcd(self, step: dict[str, Any]) -> None:
        """A virtual card into (or out of) the vpcd slot: seen through pcscd."""
        if "insert" in step:
            profile = step["insert"]
            pki = create_test_pki() if profile in ("mynumber", "faulty") else None
            uid = bytes.fromhex(step["uid"]) if "uid" in step else None
            self.link = VpcdLink(build_card(profile, pki=pki, uid=uid), port=self.card_port)
            self.link.insert()
            self.report(inserted=profile)
        else:
            if self.link is not None:
                self.link.remove()
            self.report(removed=True)
        self.advance(0.2)

    def enrolment_central(self, step: dict[str, Any]) -> None:
        """Release the fake central's held answer, or report what it received."""
        assert self.fake_enrolment is not None, "scenario needs enrolment"
        if "release" in step:
            assert self.fake_enrolment.gate is not None, "scenario needs hold"
            self.fake_enrolment.gate.set()
            self.report(released=True)
        else:
            received = [(c.credential_ref, c.kind) for c in self.fake_enrolment.received]
            self.report(received=received, cancelled=len(self.fake_enrolment.cancelled))
        self.advance()

    def tap(self, target: str) -> None:
        screen_name, *path = target.split(".")
        manager = self.app.root
        if manager.current != screen_name:
            raise RuntimeError(f"screen is {manager.current}, not {screen_name}")
        if manager.transition.is_active:
            # The screen manager ignores touches while a screen fades in (a
            # loaded machine can draw that slowly): tap once it has.
            Clock.schedule_once(lambda _dt: self.tap(target), 0.05)
            return
        widget = manager.get_screen(screen_name)
        for widget_id in path:  # ids of a rule inside a rule: "countdown.continue_button"
            widget = widget.ids[widget_id]
        x, y = widget.to_window(*widget.center)
        touch = UnitTestTouch(x, y)
        touch.touch_down()
        touch.touch_up()
        self.report(tapped=target, width_mm=widget.width / mm(1), height_mm=widget.height / mm(1),
                    at=time.time())  # fmt: skip
        self.advance(0.25)

    def wait(self, screen: str, deadline: float) -> None:
        if self.app.root.current == screen and self.app.view.screen == screen:
            self.report(reached=screen)
            self.advance(0.3)
        elif time.monotonic() > deadline:
            raise TimeoutError(f"screen {screen} not reached (at {self.app.root.current})")
        else:
            Clock.schedule_once(lambda _dt: self.wait(screen, deadline), 0.05)

    def wait_title(self, title: str, deadline: float) -> None:
        """Until the screen's title reads ``title``; reports the wall-clock moment."""
        if self.app.view.title == title:
            self.report(title=title, at=time.time())
            self.advance(0.05)
        elif time.monotonic() > deadline:
            raise TimeoutError(f"title {title!r} not shown (it is {self.app.view.title!r})")
        else:
            Clock.schedule_once(lambda _dt: self.wait_title(title, deadline), 0.02)

    def command(self, step: dict[str, Any]) -> None:
        """A remote command into the ledger, or the wait for its outcome."""
        if "receive" in step:
            command_id = receive(self.store_path, Path(step["receive"]).read_bytes())
            self.report(received=command_id)
            self.advance(0.05)
        else:
            self.wait_finished(step["finished"], time.monotonic() + step.get("timeout", 10))

    def wait_finished(self, command_id: str, deadline: float) -> None:
        found = entry(self.store_path, command_id)
        if found is not None and found.state not in ("pending", "running"):
            if found.attachment is not None:
                (self.artifacts / f"{command_id}.png").write_bytes(found.attachment)
            self.report(
                command=command_id, state=found.state, code=found.code,
                message=found.message, detail=found.detail, screen=self.app.view.screen,
            )  # fmt: skip
            self.advance(0.05)
        elif time.monotonic() > deadline:
            raise TimeoutError(f"command {command_id} not finished ({found})")
        else:
            Clock.schedule_once(lambda _dt: self.wait_finished(command_id, deadline), 0.1)

    def wait_notice(self, text: str, deadline: float) -> None:
        """Until the attract screen's notice label reads ``text`` (the app's own clock)."""
        label = self.app.root.get_screen("attract").ids["notice"]
        if label.text == text and label.opacity == 1:
            self.report(notice=text, height_mm=label.height / mm(1))
            self.advance(0.05)
        elif time.monotonic() > deadline:
            raise TimeoutError(f"notice {text!r} not shown (it is {label.text!r})")
        else:
            Clock.schedule_once(lambda _dt: self.wait_notice(text, deadline), 0.05)

    def shot(self, name: str) -> None:
        def capture(*_args: Any) -> None:
            Window.unbind(on_flip=capture)
            path = Window.screenshot(str(self.artifacts / f"{name}.png"))
            self.report(shot=path)
            self.advance(0.05)

        Window.bind(on_flip=capture)
        Window.canvas.ask_update()


def main() -> int:
    scenario = json.loads(Path(sys.argv[1]).read_text())
    config = load_config(scenario["config"])
    artifacts = Path(scenario["artifacts"])
    artifacts.mkdir(parents=True, exist_ok=True)
    holder: dict[str, Driver] = {}

    feeds: list[CardFeed] = []
    pki_dir = scenario.get("dev_panel")
    card_port = int(scenario.get("cards", {}).get("port", 0))

    def started(app: KioskApp) -> None:
        if card_port:
            feeds.append(CardFeed(card_service_for(config), app.post_seen).start())
        if pki_dir:
            app.dev_panel = DevPanel(card_port, Path(pki_dir), config.lock.socket, "room-a")
            app.dev_panel.attach()
        holder["driver"] = driver = Driver(app, scenario["steps"], artifacts, card_port, central)
        driver.scenario = scenario
        driver.store_path = config.store.path
        if scenario.get("keypad"):
            driver.keypad = KeypadSteps(driver)
        driver.start()

    trusted = bool(scenario.get("clock_trusted", True))  # injected, as the demo could
    factory, closer = build_checkin_session(
        config, lock=lock_for(config), clock_trusted=lambda: trusted
    )
    central = None
    mode = None
    if "enrolment" in scenario:  # card enrolment against the in-process fake central
        setup = scenario["enrolment"]
        central = FakeEnrolmentCentral(codes=dict(setup.get("codes", {})))
        central.refuse_enrol = setup.get("refuse_enrol", "")
        central.gate = threading.Event() if setup.get("hold") else None
        mode = enrolment_mode_for(config, central=central, clock_trusted=lambda: trusted)
    try:
        name = config.device.name or config.device.facility
        commands = ScreenCommands.for_config(config) if scenario.get("commands") else None
        KioskApp(
            factory, name, on_started=started, mode=mode, keypad=config.keypad, commands=commands
        ).run()
    finally:
        for feed in feeds:
            feed.close()
        closer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
