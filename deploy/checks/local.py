"""Checks of the device itself: configuration, GPIO pin choice, clock, disk, store."""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from deploy.checks import CheckResult, DoctorContext, fail, not_checked, ok, warn
from foundation.clock import clock_is_synchronised
from sync.errors import StoreError
from sync.outbox import Outbox
from sync.store import open_store

PIN_KEYS = ("relay_pin", "contact_pin", "exit_button_pin", "buzzer_pin", "led_pin")
PIN_PROBLEM = re.compile(r"\b\w+_pin\b")
HIGHEST_GPIO = 27
# docs/hardware.md "Which GPIOs": GPIO0/1 belong to the HAT ID EEPROM,
# GPIO14/15 to the serial console (they toggle during boot), and GPIO0-8
# are pulled up at power-up, so a relay there may energise (unlock) before
# lockctl starts.
RESERVED = {
    0: "the HAT ID EEPROM (ID_SD)",
    1: "the HAT ID EEPROM (ID_SC)",
    14: "the serial console (TXD)",
    15: "the serial console (RXD)",
}
PULLED_UP_AT_BOOT = range(2, 9)
GPIOCHIPS = "/dev/gpiochip*"
# Free space below these fails / warns (the store needs room for an offline backlog).
DISK_FAIL_BYTES, DISK_FAIL_RATIO = 100 * 1024**2, 0.02
DISK_WARN_BYTES, DISK_WARN_RATIO = 500 * 1024**2, 0.10


def check_config(ctx: DoctorContext) -> CheckResult:
    if ctx.config is not None:
        doors = ", ".join(d.id for d in ctx.config.doors) or "none"
        return ok(
            "config",
            f"{ctx.config_path} valid (device {ctx.config.device.id},"
            f" role {ctx.config.device.role}, doors: {doors})",
            device=ctx.config.device.id,
        )
    error = ctx.config_error
    problems = list(error.problems) if error is not None else ["not loaded"]
    others = [p for p in problems if not PIN_PROBLEM.search(p)]
    pin_count = len(problems) - len(others)
    lines = others + ([f"{pin_count} GPIO pin problem(s): see gpio_pins"] if pin_count else [])
    return fail(
        "config",
        f"{ctx.config_path} invalid: " + "; ".join(lines),
        f"fix the keys named here in {ctx.config_path} (docs/configuration.md),"
        " check with `python -m sync config --config FILE`, then run doctor again",
        problems=problems,
    )


class PinUse(NamedTuple):
    where: str  # doors[0].relay_pin
    key: str
    value: Any


def _pin_uses(raw: dict[str, Any]) -> Iterator[PinUse]:
    doors = raw.get("doors", [])
    if not isinstance(doors, list):
        return
    for index, door in enumerate(doors):
        if isinstance(door, dict):
            for key in PIN_KEYS:
                if key in door:
                    yield PinUse(f"doors[{index}].{key}", key, door[key])


def pin_problems(raw: dict[str, Any]) -> list[str]:
    """Every wrong GPIO choice in a raw (possibly invalid) configuration, one line each."""
    problems: list[str] = []
    seen: dict[int, str] = {}
    for use in _pin_uses(raw):
        pin = use.value
        if isinstance(pin, bool) or not isinstance(pin, int):
            problems.append(f"{use.where} = {pin!r} is not a GPIO number (BCM 0-27)")
            continue
        if not 0 <= pin <= HIGHEST_GPIO:
            problems.append(
                f"{use.where} = {pin}: there is no GPIO{pin} on the 40-pin header"
                f" (BCM numbers 0-{HIGHEST_GPIO}, not physical pin numbers)"
            )
            continue
        if pin in seen:
            problems.append(f"{use.where} = {pin}: GPIO{pin} is already used by {seen[pin]}")
            continue
        seen[pin] = use.where
        if pin in RESERVED:
            problems.append(f"{use.where} = {pin}: GPIO{pin} is reserved for {RESERVED[pin]}")
        elif use.key == "relay_pin" and pin in PULLED_UP_AT_BOOT:
            problems.append(
                f"{use.where} = {pin}: GPIO{pin} is pulled up at power-up, so the lock"
                " could open while the device boots; use a relay on GPIO9-27"
            )
    return problems


def check_gpio_pins(ctx: DoctorContext, gpiochips: str = GPIOCHIPS) -> CheckResult:
    if ctx.raw is None:
        return not_checked("gpio_pins")
    problems = pin_problems(ctx.raw)
    if problems:
        return fail(
            "gpio_pins",
            "wrong GPIO pin in config: " + "; ".join(problems),
            f"correct the [[doors]] pins in {ctx.config_path} to match the wiring"
            " (docs/hardware.md, Which GPIOs), then restart city-kiosk-lockctl",
            problems=problems,
        )
    count = sum(1 for _ in _pin_uses(ctx.raw))
    factory = ctx.raw.get("lock", {}).get("pin_factory", "default")
    if factory == "mock":
        return warn(
            "gpio_pins",
            f'{count} pins valid, but lock.pin_factory = "mock": doors are simulated',
            'set lock.pin_factory = "default" on a device that drives real locks',
        )
    if not list(Path(gpiochips).parent.glob(Path(gpiochips).name)):
        return fail(
            "gpio_pins",
            f"{count} pins valid, but this machine has no GPIO chip ({gpiochips})",
            "run doctor on the Raspberry Pi itself; check that the kernel exposes /dev/gpiochip0",
        )
    return ok("gpio_pins", f"{count} pins valid and free of reserved GPIOs")


def check_clock(ctx: DoctorContext) -> CheckResult:
    if clock_is_synchronised():
        return ok("clock", "system clock is NTP-synchronised")
    return fail(
        "clock",
        "system clock is not synchronised (events are marked clock_trusted=false;"
        " check-ins follow policy.on_untrusted_clock)",
        "check `timedatectl timesync-status`, the network and the NTP server"
        " (systemd-timesyncd or chrony must be running)",
    )


DiskUsage = Callable[[Path], tuple[int, int, int]]


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(ctx: DoctorContext, usage: DiskUsage = shutil.disk_usage) -> CheckResult:
    if ctx.config is None:
        return not_checked("disk")
    folder = _existing(ctx.config.store.path.parent)
    try:
        total, _used, free = usage(folder)
    except OSError as exc:
        return fail("disk", f"cannot read the free space of {folder} ({exc})", "check the mount")
    ratio = free / total if total else 0.0
    finding = f"{free / 1024**2:.0f} MB free ({ratio:.0%}) on {folder}"
    details = {"free_bytes": free, "total_bytes": total}
    action = "free space (journald, old releases in /opt/city-kiosk/releases) or use a larger card"
    if free < DISK_FAIL_BYTES or ratio < DISK_FAIL_RATIO:
        return fail("disk", finding + ": too little for an offline backlog", action, **details)
    if free < DISK_WARN_BYTES or ratio < DISK_WARN_RATIO:
        return warn("disk", finding + ": getting low", action, **details)
    return ok("disk", finding, **details)


class _Rollback(Exception):
    """Raised inside the probe transaction so nothing is committed."""


def check_store(ctx: DoctorContext) -> CheckResult:
    if ctx.config is None:
        return not_checked("store")
    path = ctx.config.store.path
    if not path.exists():
        # Creating it here would make it root's file, unusable by the services.
        return fail(
            "store",
            f"the device store {path} does not exist yet",
            "start city-kiosk-sync (it creates the store as the service user)"
            " or correct store.path",
        )
    try:
        with open_store(path, busy_timeout=ctx.config.store.busy_timeout_seconds) as store:
            try:
                with store.write() as conn:
                    conn.execute(
                        "INSERT INTO sync_state (key, value) VALUES ('doctor.probe', '1')"
                        " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                    )
                    raise _Rollback
            except _Rollback:
                pass
            depth = Outbox(store).depth()
    except StoreError as exc:
        return fail("store", f"device store {path}: {exc.problem}", exc.action)
    except sqlite3.Error as exc:
        return fail(
            "store",
            f"device store {path} cannot be written ({exc})",
            "check the free space, the file's owner and that the disk is not read-only"
            " (`findmnt -no OPTIONS --target PATH`)",
        )
    return ok("store", f"{path} writable; {depth} event(s) waiting to be sent", outbox=depth)
