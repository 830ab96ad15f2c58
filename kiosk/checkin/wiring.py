"""Builds the check-in objects from a device configuration: the one place
that knows which real (or simulated) implementation serves each port."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from foundation.clock import clock_is_synchronised
from kiosk.checkin.access import policy_for_door
from kiosk.checkin.ports import LockPort
from kiosk.checkin.reservations import StoreReservations
from kiosk.checkin.service import CheckinService
from kiosk.checkin.session import CheckinSession
from kiosk.errors import DoorInLockdown, LockUnavailable
from kiosk.reader import code_key
from kiosk.touch.staffcall import StaffCaller, StoreStaffLink
from lockctl.client import LockClient
from lockctl.errors import LockctlError, RequestError
from lockctl.lockdown import ALL_DOORS, STATE_KEY, doors_in_lockdown
from sync.config import DeviceConfig
from sync.errors import ConfigError, StoreError
from sync.outbox import Outbox
from sync.store import Store, open_store

SessionFactory = Callable[[Callable[[CheckinSession], None]], CheckinSession]


def build_checkin_service(
    config: DeviceConfig,
    lock: LockPort,
    door: str | None = None,
    clock_trusted: Callable[[], bool] = clock_is_synchronised,
) -> tuple[CheckinService, Callable[[], None]]:
    """The check-in service for one door, and a function that closes what it
    opened. ``clock_trusted`` is the kernel's NTP state unless a test or the
    demo injects another answer."""
    door_id = door or (config.doors[0].id if config.doors else "")
    if not door_id:
        raise ConfigError(config.source, ["doors: check-in needs at least one door"])
    try:
        config.door(door_id)
    except KeyError:
        raise ConfigError(config.source, [f"--door {door_id}: no such door in [[doors]]"]) from None
    zone = ZoneInfo(config.device.timezone)
    store = open_store(
        config.store.path,
        busy_timeout=config.store.busy_timeout_seconds,
        reserve_bytes=config.store.reserve_bytes,
    )
    service = CheckinService(
        door=door_id,
        facility=config.device.facility,
        policy=policy_for_door(config, door_id),
        reservations=StoreReservations(store, zone),
        lock=lock,
        outbox=Outbox(store, timezone=zone, clock_trusted=clock_trusted),
        code_key=code_key(config),
        now=lambda: datetime.now(zone),
        clock_trusted=clock_trusted,
        lockdown=StoreLockdown(store),
    )
    return service, store.close


class StoreLockdown:
    """:class:`~kiosk.checkin.ports.LockdownSource` over the device store:
    the lockdown state lockctl keeps there (:mod:`lockctl.lockdown`)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def closed(self, door: str) -> bool:
        try:
            doors = doors_in_lockdown(self.store.get_state(STATE_KEY))
        except sqlite3.Error as exc:
            raise StoreError(
                str(self.store.path), f"lockdown state unreadable ({exc})", "Check the store."
            ) from None
        return door in doors or ALL_DOORS in doors


def build_checkin_session(
    config: DeviceConfig,
    lock: LockPort,
    door: str | None = None,
    clock_trusted: Callable[[], bool] = clock_is_synchronised,
) -> tuple[SessionFactory, Callable[[], None]]:
    """A factory for the touchscreen's session, and a function that closes
    what it opened."""
    service, close = build_checkin_service(config, lock, door, clock_trusted)
    zone = ZoneInfo(config.device.timezone)
    names = {d.id: d.name or d.id for d in config.doors}

    settings = config.staff_call
    link = StoreStaffLink(service.outbox.store, settings.link_max_age_seconds)
    staff = StaffCaller(service.outbox, link, settings, "checkin", door=service.door)

    def factory(on_change: Callable[[CheckinSession], None]) -> CheckinSession:
        session = CheckinSession(
            service, names, zone, on_change=on_change, staff=staff,
            storage_full=service.outbox.store.space_low,
        )  # fmt: skip
        session.activity(time.monotonic())
        return session

    return factory, close


class LockctlPort:
    """:class:`~kiosk.checkin.ports.LockPort` (and the terminal's signals) over
    :class:`lockctl.client.LockClient`.

    A short timeout: a missing or hung daemon becomes :class:`LockUnavailable`
    in well under a second, and the person is told to call staff. The
    connection is reopened after any failure.
    """

    def __init__(self, socket_path: Path, timeout: float = 0.5) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self._client: LockClient | None = None

    def unlock(self, door: str, seconds: float, reason: str, ref: str) -> float:
        """Raises :class:`DoorInLockdown` when lockctl refuses with ``lockdown``,
        :class:`LockUnavailable` for anything else that did not unlock."""
        reply = self._call(lambda c: c.unlock(door, seconds=seconds, reason=reason, ref=ref))
        granted = reply.get("seconds", seconds)
        return float(granted) if isinstance(granted, int | float) else seconds

    def signal(self, door: str, pattern: str) -> None:
        """Buzzer/LED pattern on the door terminal (lockctl owns those pins)."""
        self._call(lambda c: c.request("signal", door=door, pattern=pattern))

    def _call(self, action: Callable[[LockClient], dict[str, Any]]) -> dict[str, Any]:
        if self._client is None:
            self._client = LockClient(self.socket_path, timeout=self.timeout)
        try:
            return action(self._client)
        except RequestError as exc:
            if exc.code == "lockdown":
                raise DoorInLockdown(exc.message) from exc
            self.close()
            raise LockUnavailable(str(exc)) from exc
        except LockctlError as exc:
            self.close()
            raise LockUnavailable(str(exc)) from exc

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def lock_for(config: DeviceConfig) -> LockPort:
    return LockctlPort(config.lock.socket)
