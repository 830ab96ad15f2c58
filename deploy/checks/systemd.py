"""Checks of the services: the three units active, and the watchdogs armed
(lockctl's WatchdogSec and the hardware watchdog of systemd itself).

On a machine that does not run systemd (a container, a build machine) both
report "not applicable" as a warning, not a failure.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from deploy.checks import CheckResult, DoctorContext, fail, ok, warn

UNITS = ("city-kiosk-lockctl.service", "city-kiosk-sync.service", "city-kiosk-kiosk.service")
LOCK_UNIT = UNITS[0]
SYSTEMD_RUNNING = Path("/run/systemd/system")
Run = Callable[[Sequence[str]], tuple[int, str]]


def run_command(argv: Sequence[str]) -> tuple[int, str]:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return 127, str(exc)
    return done.returncode, done.stdout.strip()


def _not_applicable(name: str) -> CheckResult:
    return warn(
        name,
        "not applicable: this machine does not run systemd",
        "run doctor on the installed device",
    )


def check_services(
    ctx: DoctorContext, run: Run = run_command, marker: Path = SYSTEMD_RUNNING
) -> CheckResult:
    if not marker.is_dir():
        return _not_applicable("services")
    states = {}
    for unit in UNITS:
        _code, out = run(["systemctl", "is-active", unit])
        states[unit] = out or "unknown"
    down = [f"{u} {s}" for u, s in states.items() if s != "active"]
    if down:
        first = next(u for u, s in states.items() if s != "active")
        return fail(
            "services",
            "not running: " + ", ".join(down),
            f"`systemctl status {first}` and `journalctl -u {first} -n 50`; after fixing,"
            f" `systemctl restart {first}`",
            units=states,
        )
    return ok("services", "running: " + ", ".join(UNITS), units=states)


def _property(run: Run, argv: Sequence[str]) -> str:
    code, out = run(argv)
    if code != 0:
        return ""
    return out.partition("=")[2].strip()


def _armed(value: str) -> bool:
    return value not in {"", "0", "infinity"}


def check_watchdog(
    ctx: DoctorContext, run: Run = run_command, marker: Path = SYSTEMD_RUNNING
) -> CheckResult:
    if not marker.is_dir():
        return _not_applicable("watchdog")
    unit = _property(run, ["systemctl", "show", "-p", "WatchdogUSec", LOCK_UNIT])
    hardware = _property(run, ["systemctl", "show", "-p", "RuntimeWatchdogUSec"])
    details = {"lockctl_watchdog": unit, "runtime_watchdog": hardware}
    if not _armed(unit):
        return fail(
            "watchdog",
            f"{LOCK_UNIT} has no watchdog (WatchdogUSec={unit or 'unknown'})",
            "reinstall the release: the unit must have WatchdogSec (a hung lockctl"
            " could otherwise hold a door unlocked)",
            **details,
        )
    if not _armed(hardware):
        return warn(
            "watchdog",
            f"lockctl watchdog {unit}, but the hardware watchdog is off"
            f" (RuntimeWatchdogUSec={hardware or 'unknown'})",
            "set RuntimeWatchdogSec=15 in /etc/systemd/system.conf (the installer does) and reboot",
            **details,
        )
    return ok("watchdog", f"lockctl watchdog {unit}, hardware watchdog {hardware}", **details)
