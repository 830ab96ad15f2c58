"""Start the counter kiosk's issuance touchscreen from a device configuration."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cardreader.watch import CardEvent, CardWatcher
from sync.config import DeviceConfig


def run_issuance(
    config: DeviceConfig,
    on_started: Callable[[Any], None] | None = None,
    **ports: Any,
) -> int:
    """Run until the app stops. ``ports`` are injected into
    :func:`kiosk.issuance.wiring.build_issuance` (``central=``, ``payment=``,
    ``printer=``, ``cards=``, ``sound=``, ``clock_trusted=``); the rest come
    from the config.
    ``on_started(app)`` runs once the app and its card watcher are up."""
    from kiosk.issuance.sound import KivySound
    from kiosk.issuance.ui.app import IssuanceApp
    from kiosk.issuance.wiring import build_issuance
    from kiosk.reader import card_service_for
    from kiosk.touch.app import post_to_ui

    if "sound" not in ports and config.issuance.sound:
        ports["sound"] = KivySound(config.issuance.spool.parent / "sounds")
    kit = build_issuance(config, post_to_ui, **ports)
    watchers: list[CardWatcher] = []
    watch_service = card_service_for(config)

    def started(app: IssuanceApp) -> None:
        def card_event(event: CardEvent) -> None:  # on the watcher's thread
            if event.kind in ("inserted", "removed"):
                app.post_card(event.kind == "inserted")

        watchers.append(watch_service.watch(card_event))
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
