"""Calling staff from a touchscreen (check-in and issuance share it).

A press records ``kiosk.staff_called`` in the outbox (a random call id, the
screen, the door: nothing about the person); the sync agent sends it and
central opens a ``staff_requested`` alert. Central answers on the device's
retained ``staffcall`` topic, which the agent keeps in the device store:
``open`` (staff were alerted), ``acknowledged`` (someone is on the way),
cleared (staff marked it done). When the person's session ends first
(they left, the screen went idle, they pressed Back) the screen records
``kiosk.staff_call_ended`` and central resolves the alert.

:func:`advance` is the pure decision: what the screen says now, from what
the store says. :class:`StaffCaller` is the small service around it, with
the store behind :class:`StaffLink`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol

from contracts.mqtt import STAFF_CALL_ENDED_EVENT, STAFF_CALLED_EVENT, StaffCallState
from sync.config import StaffCallSection
from sync.errors import SyncError
from sync.outbox import Outbox
from sync.staffcall import current_staff_call, link_connected
from sync.store import Store

log = logging.getLogger(__name__)


class CallPhase(StrEnum):
    CALLING = "calling"  # recorded; central has not confirmed it yet
    ALERTED = "alerted"  # central opened the alert: staff were told
    ON_THE_WAY = "on_the_way"  # a member of staff acknowledged it
    UNREACHABLE = "unreachable"  # no connection, or no answer in time
    FINISHED = "finished"  # staff marked it done


@dataclass(frozen=True, slots=True)
class CallStatus:
    call: str
    phase: CallPhase
    pressed_at: float  # the session's monotonic clock
    confirmed: bool = False  # central has shown it knows this call


def advance(
    status: CallStatus,
    remote: StaffCallState | None,
    connected: bool,
    now: float,
    answer_timeout: float,
) -> CallStatus:
    """The call's phase after looking at the store once."""
    if status.phase is CallPhase.FINISHED:
        return status
    if remote is not None and remote.call == status.call:
        phase = CallPhase.ON_THE_WAY if remote.state == "acknowledged" else CallPhase.ALERTED
        return replace(status, phase=phase, confirmed=True)
    if status.confirmed:
        # Central knew the call and cleared it: staff marked it done.
        return replace(status, phase=CallPhase.FINISHED)
    if not connected or now - status.pressed_at >= answer_timeout:
        return replace(status, phase=CallPhase.UNREACHABLE)
    return replace(status, phase=CallPhase.CALLING)


class StaffLink(Protocol):
    """What the sync agent says, read from the device store."""

    def connected(self) -> bool: ...

    def remote(self) -> StaffCallState | None: ...


@dataclass
class StoreStaffLink:
    """:class:`StaffLink` over the device store the agent writes."""

    store: Store
    max_age: float
    wall_clock: Callable[[], float] = time.time

    def connected(self) -> bool:
        return link_connected(self.store, self.wall_clock(), self.max_age)

    def remote(self) -> StaffCallState | None:
        return current_staff_call(self.store)


@dataclass
class StaffCaller:
    """One touchscreen's staff calls; ``status`` is the current one, if any."""

    outbox: Outbox
    link: StaffLink
    settings: StaffCallSection
    screen: str  # "checkin" or "issuance": which touchscreen called
    door: str = ""
    new_id: Callable[[], str] = lambda: str(uuid.uuid4())
    status: CallStatus | None = None

    def call(self, now: float) -> CallStatus:
        """The person pressed "Call staff" (again: the same call goes on)."""
        if self.status is not None and self.status.phase is not CallPhase.FINISHED:
            return self.poll(now) or self.status
        status = CallStatus(self.new_id(), CallPhase.CALLING, now)
        data: dict[str, object] = {"call": status.call, "screen": self.screen}
        if self.door:
            data["door"] = self.door
        self.status = status
        self._record(STAFF_CALLED_EVENT, data)
        return self.poll(now) or status

    def poll(self, now: float) -> CallStatus | None:
        """Look at the store once (the UI's one-second clock)."""
        if self.status is None:
            return None
        try:
            remote, connected = self.link.remote(), self.link.connected()
        except SyncError as exc:
            log.warning("staff call state unreadable", extra={"error": str(exc)})
            remote, connected = None, False
        self.status = advance(
            self.status, remote, connected, now, self.settings.answer_timeout_seconds
        )
        return self.status

    def end(self, reason: str) -> None:
        """The person's session is over (``left``, ``back``): central resolves the call."""
        status, self.status = self.status, None
        if status is not None and status.phase is not CallPhase.FINISHED:
            self._record(STAFF_CALL_ENDED_EVENT, {"call": status.call, "reason": reason})

    def _record(self, type_: str, data: dict[str, object]) -> None:
        try:
            self.outbox.append(type_, data)
        except SyncError as exc:
            # The screen still tells the person where to go; the log line is
            # the trace of the call central never heard of.
            log.error("event not recorded", extra={"event_type": type_, "error": str(exc)})
