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


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ui_startup")
    parser.add_argument("--config", required=True)
    args = parser.parse_args()

    from kivy.clock import Clock
    from kivy.core.window import Window

    from kiosk.checkin.ui.app import KioskApp
    from kiosk.checkin.wiring import build_checkin_session, lock_for
    from sync.config import load_config

    config = load_config(args.config)
    factory, close = build_checkin_session(config, lock=lock_for(config))

    def started(app: KioskApp) -> None:
        def first_frame(*_args: Any) -> None:
            Window.unbind(on_flip=first_frame)
            print("READY", flush=True)
            Clock.schedule_once(lambda _dt: app.stop(), 0)

        Window.bind(on_flip=first_frame)
        Window.canvas.ask_update()

    try:
        KioskApp(factory, config.device.name or config.device.facility, on_started=started).run()
    finally:
        close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
