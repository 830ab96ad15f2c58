"""Start the check-in touchscreen from a device configuration."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from foundation.clock import clock_is_synchronised
from sync.config import DeviceConfig

if TYPE_CHECKING:
    from kiosk.touch.mode import TouchMode


def run_touchscreen(
    config: DeviceConfig,
    door: str | None = None,
    on_started: Callable[[Any], None] | None = None,
    clock_trusted: Callable[[], bool] = clock_is_synchronised,
    mode: TouchMode | None = None,
) -> int:
    """Run until the app stops. ``on_started(app)`` runs once the app and its
    card feed are up (the demo attaches its developer panel there). ``mode``
    (card enrolment) is opened from the attract screen."""
    from kiosk.cards import CardFeed
    from kiosk.checkin.ui.app import KioskApp
    from kiosk.checkin.wiring import build_checkin_session, lock_for
    from kiosk.reader import card_service_for
    from kiosk.touch.capture import ScreenCommands
    from kiosk.voice.wiring import voice_for

    factory, close = build_checkin_session(
        config, lock=lock_for(config), door=door, clock_trusted=clock_trusted
    )
    feeds: list[CardFeed] = []

    def started(app: KioskApp) -> None:
        # Cards are identified on the feed's thread; the app gets them on its own.
        feeds.append(CardFeed(card_service_for(config), app.post_seen).start())
        if on_started is not None:
            on_started(app)

    try:
        name = config.device.name or config.device.facility
        KioskApp(
            factory,
            name,
            on_started=started,
            mode=mode,
            voice=voice_for(config),
            keypad=config.keypad,
            commands=ScreenCommands.for_config(config),
        ).run()
    finally:
        for feed in feeds:
            feed.close()
        close()
    return 0
