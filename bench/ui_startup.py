"""Time to the check-in touchscreen's first drawn frame, for
``bench/checkin.py``: the product's app objects (the session factory of
``kiosk.checkin.wiring`` and ``KioskApp``), without a card feed, printing
``READY`` at the first frame of the attract screen and stopping.

    python -m bench.ui_startup --config device.toml
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

os.environ.setdefault("KIVY_NO_ARGS", "1")


def run_to_first_frame(config: Any, name: str, voice: Any = None) -> int:
    """Run the check-in app on ``config`` until its first drawn frame,
    printing ``READY`` there (``voice``: a voice guide to attach)."""
    from kivy.clock import Clock
    from kivy.core.window import Window

    from kiosk.checkin.ui.app import KioskApp
    from kiosk.checkin.wiring import build_checkin_session, lock_for

    factory, close = build_checkin_session(config, lock=lock_for(config))

    def started(app: KioskApp) -> None:
        def first_frame(*_args: Any) -> None:
            Window.unbind(on_flip=first_frame)
            print("READY", flush=True)
            Clock.schedule_once(lambda _dt: app.stop(), 0)

        Window.bind(on_flip=first_frame)
        Window.canvas.ask_update()

    try:
        KioskApp(factory, name, on_started=started, voice=voice).run()
    finally:
        close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ui_startup")
    parser.add_argument("--config", required=True)
    args = parser.parse_args()

    from sync.config import load_config

    config = load_config(args.config)
    return run_to_first_frame(config, config.device.name or config.device.facility)


if __name__ == "__main__":
    sys.exit(main())
