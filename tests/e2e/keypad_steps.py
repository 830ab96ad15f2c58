"""Keypad steps for the e2e drivers (:mod:`tests.e2e.ui_driver`, issuance).

Keys are real X events: ``xdotool key KP_6`` through XTEST into the Xvfb
display, after the Kivy window got the input focus (no window manager
there), so they travel X server → SDL → Kivy's window → the app, as a USB
keypad's do. Steps:

* ``{"press": "KP_6"}``: one key; reports the screen and the focused
  button (its kv id, else its words) once the app has handled it;
* ``{"press": "KP_2", "until": "next_button", "max": 8}``: press until that
  button has the focus;
* ``{"unplug": true}``: remove the file standing for the keypad's device
  node (``keypad_device`` in the scenario);
* ``{"spoken": true}``: report what the app said (a recording speech).
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Protocol

from kivy.clock import Clock
from kivy.core.window import Window

from kiosk.touch.keyfocus import widget_ids

KEY_SETTLE_SECONDS = 0.25  # more than the touch sessions' double-tap guard (0.15 s)


class RecordingSpeech:
    """What the app said, with the screen it was said on."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.said: list[tuple[str, str]] = []

    def say(self, text: str) -> None:
        self.said.append((self.app.root.current, text))

    def repeat(self) -> None:
        self.said.append((self.app.root.current, "<repeat>"))


class LogList(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[dict[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append({"level": record.levelname, "event": str(getattr(record, "event", ""))})


class DriverLike(Protocol):
    app: Any
    scenario: dict[str, Any]

    def report(self, **values: Any) -> None: ...

    def advance(self, delay: float = 0.15) -> None: ...


class KeypadSteps:
    """Attached to a driver when its scenario has ``"keypad": true``."""

    def __init__(self, driver: DriverLike) -> None:
        self.driver = driver
        self.speech = RecordingSpeech(driver.app)
        driver.app.speech = self.speech
        self.log = LogList()
        logging.getLogger("kiosk.keypad").addHandler(self.log)
        self.focused_window = False

    def handles(self, step: dict[str, Any]) -> bool:
        return any(k in step for k in ("press", "unplug", "spoken"))

    def run(self, step: dict[str, Any]) -> None:
        if "press" in step:
            self.press(step, step.get("max", 1))
        elif "unplug" in step:
            Path(self.driver.scenario["keypad_device"]).unlink()
            self.driver.report(unplugged=True)
            self.driver.advance()
        else:
            self.driver.report(spoken=self.speech.said, keypad_log=self.log.lines)
            self.driver.advance()

    def press(self, step: dict[str, Any], left: int) -> None:
        if not self.focused_window:
            self.focus_window()
            self.focused_window = True
        started = time.monotonic()
        subprocess.run(["xdotool", "key", step["press"]], check=True, timeout=10)
        sent_ms = (time.monotonic() - started) * 1000
        Clock.schedule_once(lambda _dt: self.pressed(step, left - 1, sent_ms), KEY_SETTLE_SECONDS)

    def focus_window(self) -> None:
        """Give this app's X window the keyboard focus. SDL does not always
        say which window is its own; then it is looked up by pid, and where
        that fails too the pointer is put on it (with no window manager the
        X server's focus follows the pointer)."""
        info = Window.get_window_info()
        window = str(getattr(info, "window", "") or "")
        if not window:
            found = subprocess.run(
                ["xdotool", "search", "--pid", str(os.getpid())],
                capture_output=True, text=True, check=False, timeout=10,
            )  # fmt: skip
            window = (found.stdout.split() or [""])[0]
        if window:
            subprocess.run(["xdotool", "windowfocus", "--sync", window], check=True, timeout=10)
            self.driver.report(key_window=window)
        else:
            x, y = Window.left + Window.width // 2, Window.top + Window.height // 2
            subprocess.run(["xdotool", "mousemove", str(x), str(y)], check=True, timeout=10)
            self.driver.report(key_window="pointer")

    def pressed(self, step: dict[str, Any], left: int, sent_ms: float) -> None:
        focus = self.focus_name()
        until = step.get("until")
        if until and focus != until:
            if left > 0:
                self.press(step, left)
                return
            self.driver.report(error=f"{until} not focused by {step['press']} (at {focus})")
            self.driver.app.stop()
            return
        self.driver.report(
            pressed=step["press"], screen=self.driver.app.root.current, focus=focus,
            rings=self.rings(), xdotool_ms=round(sent_ms, 1),
        )  # fmt: skip
        self.driver.advance(0.05)

    def rings(self) -> int:
        """How many buttons of the screen show the focus ring."""
        screen = self.driver.app.root.current_screen
        return sum(1 for w in screen.walk(restrict=True) if getattr(w, "focused", False))

    def focus_name(self) -> str:
        keyfocus = self.driver.app.keyfocus
        widget = keyfocus.focused if keyfocus is not None else None
        if widget is None:
            return ""
        names = widget_ids(self.driver.app.root.current_screen)
        return names.get(widget.uid, str(widget.text))
