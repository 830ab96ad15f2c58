"""The self-test's checks (``python -m deploy doctor``; docs/doctor.md).

Each check is a function ``check(ctx) -> CheckResult``: it never raises for a
problem it was written to find, it reports it, with what to do. The checks
only read, except the store check (a write that is rolled back) and the
relay click (an unlock pulse the technician confirmed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from sync.config import DeviceConfig
from sync.errors import ConfigError


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class CheckResult:
    """One row of the report: ``finding`` says what was seen, ``action`` what to do."""

    name: str
    status: Status
    finding: str
    action: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "finding": self.finding,
            "action": self.action,
            "details": self.details,
        }


def ok(name: str, finding: str, **details: Any) -> CheckResult:
    return CheckResult(name, Status.OK, finding, "", details)


def warn(name: str, finding: str, action: str, **details: Any) -> CheckResult:
    return CheckResult(name, Status.WARN, finding, action, details)


def fail(name: str, finding: str, action: str, **details: Any) -> CheckResult:
    return CheckResult(name, Status.FAIL, finding, action, details)


def not_checked(name: str) -> CheckResult:
    """For checks that need the configuration when it did not load."""
    return warn(name, "not checked: the configuration did not load", "fix the config first")


Confirm = Callable[[str], bool]


@dataclass
class DoctorContext:
    """What every check may use. ``config`` is None when it did not load."""

    config_path: Path
    config: DeviceConfig | None
    config_error: ConfigError | None = None
    raw: dict[str, Any] | None = None
    timeout: float = 5.0
    card_test: bool = False
    card_wait_seconds: float = 30.0
    relay_click: str | None = None
    confirm: Confirm = field(default=lambda _question: False)
    say: Callable[[str], None] = field(default=lambda _line: None)
