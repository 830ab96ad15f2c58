"""Start the check-in touchscreen from a device configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sync.config import DeviceConfig


def run_touchscreen(
    config: DeviceConfig,
    door: str | None = None,
    measure_startup: bool = False,
    dev_panel: tuple[int, Path] | None = None,
) -> int:
    """Run until the app stops. With ``measure_startup``, print ``READY`` at
    the first drawn frame of the attract screen and stop (for benchmarks)."""
    from kivy.clock import Clock
    from kivy.core.window import Window

    from kiosk.checkin.cards import CardFeed
    from kiosk.checkin.ui.app import KioskApp
    from kiosk.checkin.wiring import build_checkin_session, card_service_for, lock_for

    factory, close = build_checkin_session(config, lock=lock_for(config), door=door)
    feeds: list[CardFeed] = []

    def started(app: KioskApp) -> None:
        if not measure_startup:
            # Cards are identified on the feed's thread; the app gets them on its own.
            sink = lambda seen: app.post_card(seen.ref, seen.readable)  # noqa: E731
            feeds.append(CardFeed(card_service_for(config), sink).start())
            if dev_panel is not None:
                from demo.devpanel import DevPanel

                port, pki_dir = dev_panel
                DevPanel(port, pki_dir, config.lock.socket, app.session.service.door).attach()
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
        for feed in feeds:
            feed.close()
        close()
    return 0
