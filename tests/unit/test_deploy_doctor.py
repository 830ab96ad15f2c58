"""The doctor's decision logic without services: GPIO pin rules, disk
thresholds, systemd answers (a fake ``systemctl``), rendering and exit codes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from demo.config import write_demo_config
from deploy.checks import CheckResult, DoctorContext, Status
from deploy.checks.local import check_disk, pin_problems
from deploy.checks.systemd import check_services, check_watchdog
from deploy.doctor import render_table, run_checks
from sync.config import load_config


def door(**pins: object) -> dict[str, object]:
    return {"doors": [{"id": "a", **pins}]}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (door(relay_pin=17, contact_pin=27), []),
        (door(relay_pin=40), ["doors[0].relay_pin = 40: there is no GPIO40"]),
        (door(relay_pin="17"), ["doors[0].relay_pin = '17' is not a GPIO number"]),
        (door(relay_pin=True), ["doors[0].relay_pin = True is not a GPIO number"]),
        (door(relay_pin=17, led_pin=17), ["doors[0].led_pin = 17: GPIO17 is already used by"]),
        (door(relay_pin=14), ["GPIO14 is reserved for the serial console"]),
        (door(relay_pin=17, buzzer_pin=0), ["GPIO0 is reserved for the HAT ID EEPROM"]),
        (door(relay_pin=3), ["GPIO3 is pulled up at power-up"]),
        # Inputs on pulled-up pins are fine (they want a pull-up anyway).
        (door(relay_pin=17, contact_pin=4), []),
    ],
)
def test_pin_problems_one_line_per_wrong_pin(raw: dict[str, object], expected: list[str]) -> None:
    found = pin_problems(raw)
    assert len(found) == len(expected), found
    for line, part in zip(found, expected, strict=True):
        assert part in line


def test_pin_problems_across_doors() -> None:
    raw = {"doors": [{"id": "a", "relay_pin": 17}, {"id": "b", "relay_pin": 17}]}
    assert pin_problems(raw) == [
        "doors[1].relay_pin = 17: GPIO17 is already used by doors[0].relay_pin"
    ]


def context(tmp_path: Path) -> DoctorContext:
    return DoctorContext(config_path=Path("demo"), config=load_config(write_demo_config(tmp_path)))


@pytest.mark.parametrize(
    ("total_mb", "free_mb", "status"),
    [(100_000, 50_000, Status.OK), (2_000, 400, Status.WARN), (100_000, 5_000, Status.WARN),
     (2_000, 50, Status.FAIL), (100_000_000, 1_000, Status.FAIL)],
)  # fmt: skip
def test_check_disk_thresholds(tmp_path: Path, total_mb: int, free_mb: int, status: Status) -> None:
    mb = 1024**2
    result = check_disk(context(tmp_path), usage=lambda _p: (total_mb * mb, 0, free_mb * mb))
    assert result.status is status


class FakeSystemctl:
    def __init__(self, answers: dict[str, tuple[int, str]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def __call__(self, argv: Sequence[str]) -> tuple[int, str]:
        key = " ".join(argv)
        self.calls.append(key)
        return self.answers.get(key, (0, "active"))


def test_check_services_all_active(tmp_path: Path) -> None:
    fake = FakeSystemctl({})
    result = check_services(context(tmp_path), run=fake, marker=tmp_path)
    assert result.status is Status.OK
    assert "systemctl is-active city-kiosk-kiosk.service" in fake.calls


def test_check_services_names_the_unit_that_is_down(tmp_path: Path) -> None:
    fake = FakeSystemctl({"systemctl is-active city-kiosk-sync.service": (3, "failed")})
    result = check_services(context(tmp_path), run=fake, marker=tmp_path)
    assert result.status is Status.FAIL
    assert result.finding == "not running: city-kiosk-sync.service failed"
    assert "journalctl -u city-kiosk-sync.service" in result.action


def test_check_services_without_systemd_is_a_warning(tmp_path: Path) -> None:
    result = check_services(context(tmp_path), run=FakeSystemctl({}), marker=tmp_path / "none")
    assert result.status is Status.WARN and "not applicable" in result.finding


@pytest.mark.parametrize(
    ("unit", "runtime", "status"),
    [("5s", "15s", Status.OK), ("0", "15s", Status.FAIL), ("5s", "0", Status.WARN),
     ("infinity", "15s", Status.FAIL)],
)  # fmt: skip
def test_check_watchdog(tmp_path: Path, unit: str, runtime: str, status: Status) -> None:
    fake = FakeSystemctl({
        "systemctl show -p WatchdogUSec city-kiosk-lockctl.service": (0, f"WatchdogUSec={unit}"),
        "systemctl show -p RuntimeWatchdogUSec": (0, f"RuntimeWatchdogUSec={runtime}"),
    })  # fmt: skip
    assert check_watchdog(context(tmp_path), run=fake, marker=tmp_path).status is status


def test_run_checks_turns_a_crashing_check_into_a_failure(tmp_path: Path) -> None:
    def check_boom(_ctx: DoctorContext) -> CheckResult:
        raise RuntimeError("bug")

    results = run_checks(context(tmp_path), [check_boom])
    assert results[0].name == "boom" and results[0].status is Status.FAIL


def test_render_table_aligns_and_shows_actions() -> None:
    table = render_table([
        CheckResult("config", Status.OK, "valid"),
        CheckResult("gpio_pins", Status.FAIL, "wrong pin", "fix it"),
    ])  # fmt: skip
    lines = table.splitlines()
    assert lines[1].index("ok") == lines[2].index("FAIL") == lines[0].index("STATUS")
    assert lines[3].strip() == "-> fix it" and lines[3].index("->") == lines[0].index("FINDING")
    assert lines[-1].startswith("NOT READY: 1 failed (gpio_pins)")
