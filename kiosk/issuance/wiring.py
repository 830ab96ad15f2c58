"""Builds the counter kiosk's issuance objects from a device configuration:
the one place that knows which real or simulated side serves each port.

Every port can be injected (``build_issuance(config, post, central=...)``),
so the demo and end-to-end tests wire a real central server, a fake one, a
file printer or a scripted payment terminal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from foundation.clock import clock_is_synchronised
from kiosk.issuance.central import HttpsCentral
from kiosk.issuance.flow import IssuanceFlow
from kiosk.issuance.orchestrator import Orchestrator, Ports, Post
from kiosk.issuance.payment import SimulatedTerminal
from kiosk.issuance.ports import CardPort, CentralPort, PaymentTerminal, Printer, SoundPort
from kiosk.issuance.printing import CupsPrinter, FilePrinter
from kiosk.issuance.sound import SimulatedSound
from kiosk.reader import card_service_for
from kiosk.touch.staffcall import StaffCaller, StoreStaffLink
from sync.config import DeviceConfig
from sync.errors import ConfigError
from sync.outbox import Outbox
from sync.store import open_store

log = logging.getLogger(__name__)


def central_for(config: DeviceConfig) -> HttpsCentral:
    """Central over HTTPS; the client certificate is ``[central.tls]`` or,
    unset, the device identity of ``[broker.tls]``."""
    return HttpsCentral.for_device(config, "a counter kiosk")


def printer_for(config: DeviceConfig) -> Printer:
    """The printer ``issuance.printer_backend`` names (validated at load)."""
    section = config.issuance
    if section.printer_backend == "cups":
        return CupsPrinter(section.cups_queue, section.cups_server)
    if section.printer_backend == "file":
        return FilePrinter(section.spool)
    raise ConfigError(config.source, [_unsupported("printer_backend", section.printer_backend)])


def payment_for(config: DeviceConfig) -> PaymentTerminal:
    """The payment terminal ``issuance.payment_backend`` names; ``sim`` (a
    simulated terminal that approves) is the only one implemented."""
    backend = config.issuance.payment_backend
    if backend == "sim":
        return SimulatedTerminal()
    raise ConfigError(config.source, [_unsupported("payment_backend", backend)])


def _unsupported(key: str, value: str | None) -> str:
    if value is None:
        return f"issuance.{key}: required on a counter kiosk (docs/configuration.md)"
    return f"issuance.{key}: {value!r} is not supported by this build"


@dataclass
class IssuanceKit:
    """The orchestrator and what it owns; ``flow()`` makes the app's flow."""

    config: DeviceConfig
    orchestrator: Orchestrator
    closers: list[Callable[[], None]] = field(default_factory=list)
    staff: StaffCaller | None = None

    def flow(self, on_change: Callable[[IssuanceFlow], None]) -> IssuanceFlow:
        zone = ZoneInfo(self.config.device.timezone)
        flow = IssuanceFlow(self.orchestrator.submit, zone, on_change=on_change, staff=self.staff)
        self.orchestrator.flow = flow
        return flow

    def close(self) -> None:
        self.orchestrator.close()
        for close in reversed(self.closers):
            close()


def build_issuance(
    config: DeviceConfig,
    post: Post,
    *,
    central: CentralPort | None = None,
    payment: PaymentTerminal | None = None,
    printer: Printer | None = None,
    cards: CardPort | None = None,
    sound: SoundPort | None = None,
    clock_trusted: Callable[[], bool] = clock_is_synchronised,
) -> IssuanceKit:
    """The started orchestrator over the configured (or injected) ports.
    ``post`` runs a result on the UI loop (``Clock.schedule_once`` in the app)."""
    store = open_store(
        config.store.path,
        busy_timeout=config.store.busy_timeout_seconds,
        reserve_bytes=config.store.reserve_bytes,
    )
    closers: list[Callable[[], None]] = [store.close]
    zone = ZoneInfo(config.device.timezone)
    central_port = central if central is not None else central_for(config)
    closers.append(central_port.close)
    ports = Ports(
        cards=cards if cards is not None else card_service_for(config),
        central=central_port,
        payment=payment if payment is not None else payment_for(config),
        printer=printer if printer is not None else printer_for(config),
        sound=sound if sound is not None else SimulatedSound(),
        events=Outbox(store, timezone=zone, clock_trusted=clock_trusted),
    )
    settings = config.staff_call
    staff = StaffCaller(
        Outbox(store, timezone=zone, clock_trusted=clock_trusted),
        StoreStaffLink(store, settings.link_max_age_seconds), settings, "issuance",
    )  # fmt: skip
    orchestrator = Orchestrator(ports, config.device.id, post).start()
    return IssuanceKit(config, orchestrator, closers, staff)
