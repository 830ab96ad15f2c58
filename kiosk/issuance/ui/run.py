"""Start the counter kiosk's issuance touchscreen from a device configuration."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cardreader.watch import CardWatcher
from sync.config import DeviceConfig

if TYPE_CHECKING:
    from kiosk.touch.mode import TouchMode


def run_issuance(
    config: DeviceConfig,
    on_started: Callable[[Any], None] | None = None,
    mode: TouchMode | None = None,
    **ports: Any,
) -> int:
    """Run until the app stops. ``ports`` are injected into
    :func:`kiosk.issuance.wiring.build_issuance` (``central=``, ``payment=``,
    ``printer=``, ``cards=``, ``sound=``, ``clock_trusted=``); the rest come
    from the config.
    ``on_started(app)`` runs once the app and its card watcher are up.
    ``mode`` (card enrolment) is opened from the attract screen; it gets
    its cards identified by the shared :class:`~kiosk.cards.CardFeed`."""
    from kiosk.cards import CardFeed
    from kiosk.issuance.sound import KivySound
    from kiosk.issuance.ui.app import IssuanceApp
    from kiosk.issuance.wiring import build_issuance
    from kiosk.reader import card_service_for
    from kiosk.touch.app import post_to_ui
    from kiosk.touch.capture import ScreenCommands
    from kiosk.voice.wiring import voice_for

    if "sound" not in ports and config.issuance.sound:
        ports["sound"] = KivySound(config.issuance.spool.parent / "sounds")
    kit = build_issuance(config, post_to_ui, **ports)
    watchers: list[CardWatcher] = []
    watch_service = card_service_for(config)
    apps: list[IssuanceApp] = []
    feed = None
    if mode is not None:  # identified cards go to the app's UI loop, then the mode
        feed = CardFeed(card_service_for(config), lambda seen: apps[0].post_seen(seen))  # noqa: PLW0108 (app made later)

    def started(app: IssuanceApp) -> None:
        apps.append(app)
        if feed is not None:
            feed.start(watch=False)
        watchers.append(watch_service.watch(app.post_card_event))
        if on_started is not None:
            on_started(app)

    try:
        name = config.device.name or config.device.facility
        voice = voice_for(config)
        IssuanceApp(
            kit.flow,
            name,
            on_started=started,
            mode=mode,
            card_feed=feed,
            voice=voice,
            keypad=config.keypad,
            commands=ScreenCommands.for_config(config),
        ).run()
    finally:
        for watcher in watchers:
            watcher.close()
        if feed is not None and apps:
            feed.close()
        watch_service.close()
        kit.close()
    return 0
