"""Runs the real check-in touchscreen (Kivy, on the test's Xvfb) with a voice
guide whose synthesiser and player are simulated, drives it through its
actions (as the ``.kv`` handlers call them) and prints, for each step, the
texts the player was asked to play, as JSON lines.

    python -m tests.integration.voice_ui_driver CONFIG CACHE_DIR
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("KIVY_NO_ARGS", "1")

from kivy.clock import Clock

from kiosk.checkin.ui.app import KioskApp
from kiosk.checkin.wiring import build_checkin_session, lock_for
from kiosk.enrolment.ui.mode import enrolment_mode_for
from kiosk.voice.cache import AudioCache
from kiosk.voice.guide import VoiceGuide
from kiosk.voice.player import SimulatedPlayer
from kiosk.voice.synth import SimulatedSynth
from kiosk.voice.voices import VoiceSet
from sync.config import load_config
from tests.harness.enrolment import FakeEnrolmentCentral

STEPS: list[tuple[str, str]] = [
    ("", ""),  # the attract screen at start
    ("keypad", ""),
    ("read_again", ""),
    ("back", ""),
    ("language", ""),
    ("choose_language", "en"),
    ("mode", ""),
]


def main() -> int:
    config = load_config(sys.argv[1])
    synth = SimulatedSynth(rate=8000)
    player = SimulatedPlayer()
    cache = AudioCache(Path(sys.argv[2]))
    cache.load_index()
    guide = VoiceGuide(VoiceSet({}, fallback=synth), cache, player)
    factory, close = build_checkin_session(config, lock=lock_for(config))
    mode = enrolment_mode_for(config, central=FakeEnrolmentCentral(codes={}))
    steps = list(STEPS)

    def texts(files: tuple[Path, ...]) -> list[str]:
        by_path = {cache.path(synth.voice_id, t): t for t in synth.made}
        by_path.update({cache.path(synth.voice_id, t): t for t in known})
        return [by_path.get(f, "?") for f in files]

    known: list[str] = []

    def step(app: KioskApp, seen: int, deadline: float) -> None:
        if len(player.started) > seen:
            print(json.dumps({"screen": app.view.screen, "texts": texts(player.started[-1])}),
                  flush=True)  # fmt: skip
            if not steps:
                app.stop()
                return
            action, arg = steps.pop(0)
            seen, deadline = len(player.started), time.monotonic() + 10
            app.act(action, arg)  # a cached prompt starts at once, others later
        elif time.monotonic() > deadline:
            print(json.dumps({"error": f"nothing played on {app.view.screen}"}), flush=True)
            app.stop()
            return
        Clock.schedule_once(lambda _dt: step(app, seen, deadline), 0.02)

    def started(app: Any) -> None:
        steps.pop(0)
        step(app, 0, time.monotonic() + 10)

    try:
        KioskApp(factory, "Gym", on_started=started, mode=mode, voice=guide).run()
    finally:
        close()
    print(json.dumps({"done": True}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
