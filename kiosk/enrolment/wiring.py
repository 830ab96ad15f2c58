"""Builds card enrolment from a device configuration: the one place that
knows which central client and outbox serve its ports. Every port can be
injected (``build_enrolment(config, post, central=...)``), so tests wire a
fake central."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from foundation.clock import clock_is_synchronised
from kiosk.enrolment.central import HttpsEnrolmentCentral
from kiosk.enrolment.ports import EnrolmentCentral, EventSink
from kiosk.enrolment.session import EnrolmentSession
from kiosk.enrolment.worker import EnrolmentWorker, Post
from sync.config import DeviceConfig
from sync.outbox import Outbox
from sync.store import open_store


def central_for(config: DeviceConfig) -> HttpsEnrolmentCentral:
    """Central over HTTPS; the client certificate is ``[central.tls]`` or,
    unset, the device identity of ``[broker.tls]`` (as for issuance)."""
    return HttpsEnrolmentCentral.for_device(config, "card enrolment")


@dataclass
class EnrolmentKit:
    """The started worker and the session it answers; ``close`` stops both."""

    session: EnrolmentSession
    worker: EnrolmentWorker
    closers: list[Callable[[], None]]

    def close(self) -> None:
        self.worker.close()
        for close in reversed(self.closers):
            close()


def build_enrolment(
    config: DeviceConfig,
    post: Post,
    *,
    central: EnrolmentCentral | None = None,
    events: EventSink | None = None,
    clock_trusted: Callable[[], bool] = clock_is_synchronised,
) -> EnrolmentKit:
    """The session and its started worker over the configured (or injected)
    ports. ``post`` runs a result on the UI loop."""
    closers: list[Callable[[], None]] = []
    if events is None:
        store = open_store(
            config.store.path,
            busy_timeout=config.store.busy_timeout_seconds,
            reserve_bytes=config.store.reserve_bytes,
        )
        closers.append(store.close)
        zone = ZoneInfo(config.device.timezone)
        events = Outbox(store, timezone=zone, clock_trusted=clock_trusted)
    worker = EnrolmentWorker(central if central is not None else central_for(config), events, post)
    session = EnrolmentSession(submit=worker.submit)
    worker.results = session
    return EnrolmentKit(session, worker.start(), closers)
