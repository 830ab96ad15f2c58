"""Start the check-in touchscreen from a device configuration."""

from __future__ import annotations

from typing import Any

from sync.config import DeviceConfig


def run_touchscreen(
    config: DeviceConfig, door: str | None = None, measure_startup: bool = False
) -> int:
    """Run until the app stops. With ``measure_startup``, print ``READY`` at
    the first drawn frame of the attract screen and stop (for benchmarks)."""
    from kivy.clock import Clock
    from kivy.core.window import Window

    from kiosk.ui.app import KioskApp
    from kiosk.wiring import build_checkin_session, lock_for

    factory, close = build_checkin_session(config, lock=lock_for(config), door=door)

    def started(app: KioskApp) -> None:
        if not measure_startup:
            return

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
