"""Start the counter kiosk's issuance touchscreen from a device configuration."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cardreader.watch import CardEvent, CardWatcher
from sync.config import DeviceConfig


def run_issuance(
    config: DeviceConfig,
    measure_startup: bool = False,
    dev_panel: tuple[int, Path] | None = None,
    on_started: Callable[[Any], None] | None = None,
    **ports: Any,
) -> int:
    """Run until the app stops. ``ports`` are injected into
    :func:`kiosk.issuance.wiring.build_issuance` (``central=``, ``payment=``,
    ``printer=``, ``cards=``, ``sound=``); the rest come from the config.
    ``on_started(app)`` runs once the app and its card watcher are up."""
    from kivy.clock import Clock
    from kivy.core.window import Window

    from kiosk.checkin.wiring import card_service_for
    from kiosk.issuance.sound import KivySound
    from kiosk.issuance.ui.app import IssuanceApp
    from kiosk.issuance.wiring import build_issuance
    from kiosk.touch.app import post_to_ui

    if "sound" not in ports and config.issuance.sound:
        ports["sound"] = KivySound(config.issuance.spool.parent / "sounds")
    kit = build_issuance(config, post_to_ui, **ports)
    watchers: list[CardWatcher] = []
    watch_service = card_service_for(config)

    def started(app: IssuanceApp) -> None:
        if measure_startup:

            def first_frame(*_args: Any) -> None:
                Window.unbind(on_flip=first_frame)
                print("READY", flush=True)
                Clock.schedule_once(lambda _dt: app.stop(), 0)

            Window.bind(on_flip=first_frame)
            return

        def card_event(event: CardEvent) -> None:  # on the watcher's thread
            if event.kind in ("inserted", "removed"):
                app.post_card(event.kind == "inserted")

        watchers.append(watch_service.watch(card_event))
        if dev_panel is not None:  # the demo's virtual cards (never on a kiosk)
            from demo.devpanel import COUNTER_HELP, COUNTER_KEYS, DevPanel

            port, pki_dir = dev_panel
            DevPanel(port, pki_dir, None, keys=COUNTER_KEYS, help_text=COUNTER_HELP).attach()
        if on_started is not None:
            on_started(app)

    try:
        name = config.device.name or config.device.facility
        IssuanceApp(kit.flow, name, on_started=started).run()
    finally:
        for watcher in watchers:
            watcher.close()
        watch_service.close()
        kit.close()
    return 0
