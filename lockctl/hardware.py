"""GPIO through gpiozero: relay outputs, door contact and exit-button inputs,
buzzer and LED. The real pins or gpiozero's ``MockFactory``, chosen by
``lock.pin_factory`` in the device configuration.

Electrical conventions (docs/hardware.md):

* relay: energised = unlocked; ``relay_active_high`` says which GPIO level
  energises it. Created with ``initial_value=False``: locked from the first
  write.
* inputs use the internal pull-up (add an external one): the exit button is
  normally-open to ground (pressed = low); the door contact is a reed switch
  to ground, normally-closed (door closed = low) unless configured otherwise.

Only levels are read here; the state machine debounces them. Edge callbacks
only wake the control loop early (they arrive on gpiozero's thread).

With the mock factory, :class:`TimedMockPin` records every level change with
its absolute ``time.monotonic()`` (the same clock in every process on the
machine), and :meth:`Hardware.mock_drive` plays the world outside: contact,
exit button, or a relay line disturbed behind the controller's back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from gpiozero import Device, DigitalInputDevice, GPIOZeroError, OutputDevice
from gpiozero.pins.mock import MockFactory, MockPin

from lockctl.errors import HardwareError, RequestError
from sync.config import DeviceConfig, DoorSection

log = logging.getLogger(__name__)


class TimedMockPin(MockPin):  # type: ignore[misc]
    """A MockPin that also keeps ``(monotonic time, level)`` of every change."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.history: list[tuple[float, bool]] = []
        super().__init__(*args, **kwargs)
        self.history = [(time.monotonic(), bool(self._state))]

    def _change_state(self, value: bool) -> bool:
        changed = bool(super()._change_state(value))
        if changed:
            self.history.append((time.monotonic(), bool(value)))
            del self.history[:-1000]
        return changed


def make_factory(kind: str) -> Any:
    """The gpiozero pin factory for ``lock.pin_factory``."""
    if kind == "mock":
        return MockFactory(pin_class=TimedMockPin)
    try:
        return Device._default_pin_factory()
    except (GPIOZeroError, ImportError, OSError) as exc:
        raise HardwareError(
            f"no GPIO pin factory could be loaded ({exc}); on a Raspberry Pi install"
            ' python3-lgpio, elsewhere set lock.pin_factory = "mock"'
        ) from None


def _claim(what: str, create: Callable[[], Any]) -> Any:
    try:
        return create()
    except (GPIOZeroError, OSError, RuntimeError) as exc:
        raise HardwareError(
            f"{what} cannot be used: {type(exc).__name__}: {exc}."
            " Is another lockctl or program using it?"
        ) from None


def lock_relays(config: DeviceConfig, factory: Any, *, preset_high: bool = False) -> list[Any]:
    """Claim every relay output with the lock de-energised: the first thing at start.

    ``preset_high`` (mock factory only) first drives the mock relay lines
    high, simulating a line left energised, so tests can see it forced off.
    """
    relays = []
    for index, door in enumerate(config.doors):
        if preset_high:
            pin = factory.pin(door.relay_pin)
            pin.function = "output"
            pin.state = door.relay_active_high
        relays.append(
            _claim(f"GPIO{door.relay_pin} (doors[{index}].relay_pin)", _relay_maker(door, factory))
        )
    return relays


def _relay_maker(door: DoorSection, factory: Any) -> Callable[[], Any]:
    def make() -> Any:
        return OutputDevice(
            door.relay_pin,
            active_high=door.relay_active_high,
            initial_value=False,
            pin_factory=factory,
        )

    return make


class DoorPins:
    """The pins of one door."""

    def __init__(self, door: DoorSection, index: int, relay: Any, factory: Any) -> None:
        self.door = door
        self.relay = relay

        def claim(key: str, pin: int | None, create: Callable[[int], Any]) -> Any:
            if pin is None:
                return None
            return _claim(f"GPIO{pin} (doors[{index}].{key})", lambda: create(pin))

        def input_device(pin: int) -> Any:
            return DigitalInputDevice(pin, pull_up=True, pin_factory=factory)

        def output_device(pin: int) -> Any:
            return OutputDevice(pin, initial_value=False, pin_factory=factory)

        self.contact = claim("contact_pin", door.contact_pin, input_device)
        self.button = claim("exit_button_pin", door.exit_button_pin, input_device)
        self.buzzer = claim("buzzer_pin", door.buzzer_pin, output_device)
        self.led = claim("led_pin", door.led_pin, output_device)

    def relay_level(self) -> bool:
        """The relay GPIO's actual level, read from the pin."""
        return bool(self.relay.pin.state)

    def relay_energised(self) -> bool:
        return self.relay_level() == self.door.relay_active_high

    def set_relay(self, energised: bool) -> None:
        if energised:
            self.relay.on()
        else:
            self.relay.off()

    def contact_open(self) -> bool | None:
        if self.contact is None:
            return None
        high = bool(self.contact.pin.state)
        return high if self.door.contact_normally_closed else not high

    def button_pressed(self) -> bool | None:
        return None if self.button is None else not bool(self.button.pin.state)

    def set_indicators(self, *, buzzer: bool, led: bool) -> None:
        for device, on in ((self.buzzer, buzzer), (self.led, led)):
            if device is not None and bool(device.value) != on:
                device.value = on

    def inputs(self) -> list[Any]:
        return [d for d in (self.contact, self.button) if d is not None]

    def close(self) -> None:
        for device in (self.buzzer, self.led, self.contact, self.button, self.relay):
            if device is not None:
                device.close()


class Hardware:
    """Every door's pins, owned by the daemon; :meth:`close` releases them."""

    def __init__(self, config: DeviceConfig, factory: Any, relays: list[Any]) -> None:
        self.factory = factory
        self.mock = isinstance(factory, MockFactory)
        self.doors: dict[str, DoorPins] = {}
        try:
            for index, (door, relay) in enumerate(zip(config.doors, relays, strict=True)):
                self.doors[door.id] = DoorPins(door, index, relay, factory)
        except BaseException:
            for relay in relays:
                relay.off()
            self.close()
            raise
        if self.mock:
            # The simulated world starts quiet: doors closed, buttons released.
            for pins in self.doors.values():
                if pins.contact is not None:
                    self._mock_set(pins, "contact", "closed")
                if pins.button is not None:
                    self._mock_set(pins, "exit_button", "released")

    def force_all_locked(self) -> dict[str, bool]:
        """De-energise every relay; returns each relay's level read back."""
        levels = {}
        for door_id, pins in self.doors.items():
            try:
                pins.set_relay(False)
                levels[door_id] = pins.relay_level()
            except Exception:
                log.exception("could not de-energise relay", extra={"door": door_id})
        return levels

    def on_edge(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` (from gpiozero's thread) on any input edge."""
        for pins in self.doors.values():
            for device in pins.inputs():
                device.when_activated = wake
                device.when_deactivated = wake

    def mock_drive(self, door: str, input_name: str, state: str) -> None:
        if not self.mock:
            raise RequestError("mock_only", "mock commands work only with lock.pin_factory = mock")
        pins = self.doors.get(door)
        if pins is None:
            raise RequestError("unknown_door", f"no door {door!r}")
        self._mock_set(pins, input_name, state)

    @staticmethod
    def _mock_set(pins: DoorPins, input_name: str, state: str) -> None:
        door = pins.door
        if input_name == "relay":
            pins.relay.pin.state = state == "high"
            return
        device = pins.contact if input_name == "contact" else pins.button
        if device is None:
            raise RequestError("bad_request", f"door {door.id!r} has no {input_name} pin")
        if input_name == "contact":
            high = (state == "open") == door.contact_normally_closed
        else:
            high = state == "released"
        if high:
            device.pin.drive_high()
        else:
            device.pin.drive_low()

    def mock_relay_history(self, door: str) -> list[tuple[float, bool]] | None:
        pin = self.doors[door].relay.pin
        return list(pin.history) if isinstance(pin, TimedMockPin) else None

    def close(self) -> None:
        for pins in self.doors.values():
            try:
                pins.close()
            except Exception:
                log.exception("closing pins failed", extra={"door": pins.door.id})
        self.doors.clear()
