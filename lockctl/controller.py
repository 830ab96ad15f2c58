"""The control loop: door machines + pins + events, on the daemon's event loop.

Everything here runs on one thread (the asyncio loop). Requests and the loop
both call into :class:`Controller`; a request applies the relay level at once
(the unlock path does no I/O besides the pin write), the loop samples inputs,
fires timers, re-asserts every relay level the machines expect
(reconciliation) and feeds the systemd watchdog only when every relay read
back as expected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from lockctl.errors import RequestError
from lockctl.events import EventWriter
from lockctl.hardware import DoorPins, Hardware
from lockctl.lockdown import Lockdown
from lockctl.machine import DoorEvent, DoorMachine, DoorState, DoorTimings, LockReason, Reason
from lockctl.protocol import Lock, MockDrive, Signal, Unlock
from lockctl.signals import duration, indicators_at
from lockctl.watchdog import Notifier
from sync.config import DeviceConfig, DoorSection

log = logging.getLogger(__name__)

SUBSCRIBER_QUEUE = 1000
Queue = asyncio.Queue[dict[str, Any]]


def timings_for(config: DeviceConfig, door: DoorSection) -> DoorTimings:
    return DoorTimings(
        max_unlock_seconds=config.lock.max_unlock_seconds,
        exit_button_seconds=min(
            door.unlock_seconds or config.lock.default_unlock_seconds,
            config.lock.max_unlock_seconds,
        ),
        relock_on_close=door.relock_on_close,
        held_open_seconds=door.held_open_seconds,
        forced_open_grace_seconds=door.forced_open_grace_seconds,
        contact_debounce_seconds=door.contact_debounce_seconds,
        exit_button_debounce_seconds=door.exit_button_debounce_seconds,
    )


class Controller:
    """Owns the door machines; applies them to the pins; publishes events."""

    def __init__(
        self,
        config: DeviceConfig,
        hardware: Hardware,
        events: EventWriter,
        notifier: Notifier,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.hardware = hardware
        self.events = events
        self.notifier = notifier
        self.clock = clock
        self.machines = {d.id: DoorMachine(d.id, timings_for(config, d)) for d in config.doors}
        self.subscribers: dict[Queue, Callable[[], None]] = {}
        self.corrections = 0
        self._commanded: dict[str, bool] = {d.id: False for d in config.doors}
        self._signals: dict[str, tuple[str, float]] = {}  # door -> (pattern, started)
        self.startup: dict[str, float] = {}
        self.wake = asyncio.Event()

    # -- requests ------------------------------------------------------------

    def _door(self, door: str) -> tuple[DoorMachine, DoorPins]:
        machine = self.machines.get(door)
        if machine is None:
            known = ", ".join(self.machines) or "none configured"
            raise RequestError("unknown_door", f"no door {door!r} (doors: {known})")
        return machine, self.hardware.doors[door]

    def unlock(self, req: Unlock) -> dict[str, Any]:
        """A socket unlock (refused with ``lockdown`` for a door in lockdown)."""
        seconds = req.seconds
        if seconds is None and req.door in self.machines:
            section = self.config.door(req.door)
            seconds = section.unlock_seconds or self.config.lock.default_unlock_seconds
        return self._grant(req.door, seconds or 0.0, req.reason, req.ref)

    def remote_unlock(
        self, door: str, seconds: float, ref: str, staff_reason: str
    ) -> dict[str, Any]:
        """A signed ``door.unlock`` command (lockctl.inbox), capped like any unlock."""
        return self._grant(door, seconds, Reason.REMOTE, ref, staff_reason)

    def _grant(
        self,
        door: str,
        seconds: float,
        reason: Reason,
        ref: str | None,
        staff_reason: str | None = None,
    ) -> dict[str, Any]:
        machine, pins = self._door(door)
        now = self.clock()
        grant = machine.unlock(now, seconds, reason, ref, staff_reason)
        self._apply(machine, pins)
        self._publish(machine)
        wall = datetime.now(UTC) + timedelta(seconds=grant.seconds)
        return {
            "door": door,
            "seconds": round(grant.seconds, 3),
            "deadline_monotonic": grant.deadline,
            "deadline_at": wall.isoformat(timespec="milliseconds"),
            "capped": grant.capped,
            "extended": grant.extended,
            "relay_energised": pins.relay_energised(),
        }

    def lock(self, req: Lock) -> dict[str, Any]:
        machine, pins = self._door(req.door)
        was_unlocked = machine.lock(self.clock(), LockReason.REQUEST)
        self._apply(machine, pins)
        self._publish(machine)
        return {
            "door": req.door,
            "was_unlocked": was_unlocked,
            "relay_energised": pins.relay_energised(),
        }

    def lockdowns(self) -> dict[str, Lockdown]:
        """The doors in lockdown now (what lockctl.inbox keeps in the store)."""
        return {d: m.lockdown for d, m in self.machines.items() if m.lockdown is not None}

    def restore_lockdowns(self, kept: dict[str, Lockdown]) -> None:
        """At start: the lockdowns kept in the store (a door no longer
        configured is logged and forgotten)."""
        now = self.clock()
        for door, lockdown in kept.items():
            machine = self.machines.get(door)
            if machine is None:
                log.warning("lockdown of an unknown door dropped", extra={"door": door})
                continue
            machine.restore_lockdown(now, lockdown)
            self._apply(machine, self.hardware.doors[door])
            self._publish(machine)
            log.warning("door in lockdown (kept from before the start)", extra={"door": door})

    def lockdown(self, doors: list[str], lockdown: Lockdown) -> dict[str, Any]:
        """Lockdown of ``doors`` (all known: checked first, nothing half-done)."""
        for door in doors:
            self._door(door)
        now, started = self.clock(), []
        for door in doors:
            machine, pins = self._door(door)
            if machine.start_lockdown(now, lockdown):
                started.append(door)
            self._apply(machine, pins)
            self._publish(machine)
        relays = {d: self.hardware.doors[d].relay_energised() for d in doors}
        return {"doors": doors, "started": started, "relay_energised": relays}

    def release(self, doors: list[str], ref: str) -> dict[str, Any]:
        """End the lockdown of ``doors`` (all known: checked first)."""
        for door in doors:
            self._door(door)
        now, released = self.clock(), []
        for door in doors:
            machine = self.machines[door]
            if machine.release(now, ref):
                released.append(door)
            self._publish(machine)
        return {"doors": doors, "released": released}

    def signal(self, req: Signal) -> dict[str, Any]:
        """Play a buzzer/LED pattern on the door's terminal (sampled by the loop)."""
        self._door(req.door)
        self._signals[req.door] = (req.pattern, self.clock())
        self.wake.set()
        return {"door": req.door, "pattern": req.pattern, "seconds": duration(req.pattern)}

    def mock_drive(self, req: MockDrive) -> dict[str, Any]:
        self.hardware.mock_drive(req.door, req.input, req.state)
        self.wake.set()
        return {"door": req.door, "input": req.input, "state": req.state}

    def status(self) -> dict[str, Any]:
        now = self.clock()
        doors = []
        for door_id, machine in self.machines.items():
            pins = self.hardware.doors[door_id]
            entry = machine.snapshot(now)
            entry["deadline_monotonic"] = machine.deadline
            entry["relay_level"] = pins.relay_level()
            entry["relay_energised"] = pins.relay_energised()
            entry["indicators"] = pins.indicators()
            if self.hardware.mock:
                entry["mock_relay_history"] = self.hardware.mock_relay_history(door_id)
            doors.append(entry)
        return {
            "device": self.config.device.id,
            "pin_factory": self.config.lock.pin_factory,
            "monotonic": now,
            "doors": doors,
            "lockdown": sorted(self.lockdowns()),
            "events": {
                "backlog": self.events.backlog,
                "written": self.events.written,
                "store_error": self.events.last_error,
            },
            "corrections": self.corrections,
            "startup": self.startup,
            "watchdog": self.notifier.watchdog_interval,
        }

    def subscribe(self, cut_off: Callable[[], None]) -> Queue:
        """A queue of state-change messages; ``cut_off`` is called if it overflows."""
        queue: Queue = asyncio.Queue(SUBSCRIBER_QUEUE)
        self.subscribers[queue] = cut_off
        return queue

    def unsubscribe(self, queue: Queue) -> None:
        self.subscribers.pop(queue, None)

    # -- the loop ------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Sample, fire timers, reconcile relays, feed the watchdog; until ``stop``."""
        interval = self.config.lock.sample_interval_seconds
        while not stop.is_set():
            next_due = self.step()
            now = self.clock()
            if self.verify_relays():
                self.notifier.feed_if_due(now)
            timeout = interval if next_due is None else min(interval, max(0.0, next_due - now))
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout)

    def step(self) -> float | None:
        """One pass over every door; returns the earliest door timer."""
        next_due: float | None = None
        for door_id, machine in self.machines.items():
            pins = self.hardware.doors[door_id]
            machine.step(self.clock(), pins.contact_open(), pins.button_pressed())
            self._apply(machine, pins)
            self._publish(machine)
            due = machine.next_due()
            if due is not None and (next_due is None or due < next_due):
                next_due = due
        return next_due

    def verify_relays(self) -> bool:
        """Read every relay back; re-assert any level that differs (reconciliation)."""
        all_ok = True
        for door_id, machine in self.machines.items():
            pins = self.hardware.doors[door_id]
            if pins.relay_energised() == machine.relay_on:
                continue
            self.corrections += 1
            log.error(
                "relay level differs from the door state; re-asserting",
                extra={"door": door_id, "expected_energised": machine.relay_on},
            )
            pins.set_relay(machine.relay_on)
            all_ok = all_ok and pins.relay_energised() == machine.relay_on
        return all_ok

    def shutdown(self) -> None:
        """Relock every door (the first thing on any stop)."""
        now = self.clock()
        for door_id, machine in self.machines.items():
            machine.lock(now, LockReason.SHUTDOWN)
            self.hardware.doors[door_id].set_relay(False)
        self.hardware.force_all_locked()
        for machine in self.machines.values():
            self._publish(machine)

    # -- internals -------------------------------------------------------------

    def _apply(self, machine: DoorMachine, pins: DoorPins) -> None:
        # Write the relay when the door's state changes it; any other
        # difference between pin and state is found (and logged) by
        # verify_relays.
        if self._commanded.get(machine.door) != machine.relay_on:
            pins.set_relay(machine.relay_on)
            self._commanded[machine.door] = machine.relay_on
        alarm = machine.alarm in (DoorState.HELD_OPEN, DoorState.FORCED_OPEN)
        buzzer, led = alarm and bool(machine.door_open), machine.relay_on
        playing = self._signals.get(machine.door)
        if playing is not None:
            shown = indicators_at(playing[0], self.clock() - playing[1])
            if shown is None:
                del self._signals[machine.door]
            else:
                buzzer, led = buzzer or shown[0], shown[1]
        pins.set_indicators(buzzer=buzzer, led=led)

    def _publish(self, machine: DoorMachine) -> None:
        events = machine.drain_events()
        if not events:
            return
        state = machine.snapshot(self.clock())
        for event in events:
            self.events.put(event.type, event.data)
            log.info(event.type, extra=event.data)
            self._broadcast(event, state)

    def _broadcast(self, event: DoorEvent, state: dict[str, Any]) -> None:
        message = {"event": event.type, "data": event.data, "t": event.at, "state": state}
        for queue, cut_off in list(self.subscribers.items()):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                # A subscriber that does not read is cut off, never waited for.
                self.unsubscribe(queue)
                log.warning("subscriber too slow; disconnected")
                cut_off()
