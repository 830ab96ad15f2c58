"""Service control and the journal, for the commands the sync agent runs
(``service.restart``, ``device.reboot``, ``config.reload``,
``diagnostics.collect``).

:class:`System` is the small interface; ``commands.system`` picks the
implementation: :class:`SystemdSystem` runs ``systemctl`` (allowed to the
agent's user for exactly the city-kiosk units and a reboot by the polkit
rule the installer writes, ``deploy/polkit/``) and reads ``journalctl -o
json``; :class:`SimSystem` only records what it would do (the demo, the
tests) and reads ``sim-journal.jsonl`` beside the store when it exists, else
the agent's own recent log records.
"""

from __future__ import annotations

import collections
import json
import logging
import subprocess
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sync.config import DeviceConfig
from sync.errors import SyncError

log = logging.getLogger(__name__)

# The installed unit of each service (deploy/install.py: UNITS).
UNITS = {
    "kiosk": "city-kiosk-kiosk.service",
    "sync": "city-kiosk-sync.service",
    "lockctl": "city-kiosk-lockctl.service",
}
SYSTEMCTL_TIMEOUT = 60.0
JOURNAL_TIMEOUT = 15.0
SIM_JOURNAL = "sim-journal.jsonl"
RECENT_RECORDS = 5000


class SystemActionError(SyncError):
    """A service action failed; ``message`` says what systemctl answered."""


@dataclass(frozen=True, slots=True)
class LogLine:
    """One journal line (its text still unchecked for personal data)."""

    at: str
    unit: str
    level: str
    message: str


class System(Protocol):
    def restart(self, service: str, *, wait: bool = True) -> list[str]:
        """Restart one of :data:`UNITS`; returns the command run (or simulated)."""

    def reboot(self) -> list[str]:
        """Reboot the device; returns the command run (or simulated)."""

    def journal(self, lines: int) -> list[LogLine]:
        """The last ``lines`` lines of the city-kiosk units, oldest first."""


def _unit(service: str) -> str:
    unit = UNITS.get(service)
    if unit is None:
        raise SystemActionError(f"unknown service {service!r}")
    return unit


class SystemdSystem:
    """``systemctl`` and ``journalctl`` (the agent's user is allowed by polkit)."""

    def restart(self, service: str, *, wait: bool = True) -> list[str]:
        # --no-block for the agent's own unit: systemctl would wait for a job
        # that stops the very process waiting for it.
        argv = ["systemctl", "restart", *([] if wait else ["--no-block"]), _unit(service)]
        self._run(argv)
        return argv

    def reboot(self) -> list[str]:
        argv = ["systemctl", "reboot"]
        self._run(argv)
        return argv

    def journal(self, lines: int) -> list[LogLine]:
        argv = ["journalctl", "-o", "json", "-n", str(lines), "--no-pager", "-q"]
        for unit in UNITS.values():
            argv += ["-u", unit]
        try:
            out = subprocess.run(
                argv, capture_output=True, timeout=JOURNAL_TIMEOUT, check=False
            ).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            raise SystemActionError(f"journalctl failed: {exc}") from None
        return parse_journal(out.decode("utf-8", "replace"))

    def _run(self, argv: list[str]) -> None:
        log.info("system action", extra={"argv": argv})
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=SYSTEMCTL_TIMEOUT, check=False
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise SystemActionError(f"{' '.join(argv)}: {exc}") from None
        if done.returncode != 0:
            why = (done.stderr or done.stdout).strip().splitlines()
            raise SystemActionError(f"{' '.join(argv)}: {why[-1] if why else done.returncode}")


@dataclass
class SimSystem:
    """Records what it would do (``actions``, the log, the command's result)."""

    journal_file: Path | None = None
    records: RecentRecords | None = None
    actions: list[list[str]] = field(default_factory=list)

    def restart(self, service: str, *, wait: bool = True) -> list[str]:
        argv = ["systemctl", "restart", *([] if wait else ["--no-block"]), _unit(service)]
        return self._record(argv)

    def reboot(self) -> list[str]:
        return self._record(["systemctl", "reboot"])

    def journal(self, lines: int) -> list[LogLine]:
        if self.journal_file is not None and self.journal_file.exists():
            try:
                text = self.journal_file.read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                raise SystemActionError(f"{self.journal_file}: {exc.strerror}") from None
            return parse_journal(text)[-lines:]
        return self.records.lines(lines) if self.records is not None else []

    def _record(self, argv: list[str]) -> list[str]:
        self.actions.append(argv)
        log.info("simulated system action", extra={"argv": argv})
        return argv


def parse_journal(text: str) -> list[LogLine]:
    """``journalctl -o json`` output (one object a line) as :class:`LogLine`;
    lines that are not journal objects are skipped."""
    found: list[LogLine] = []
    for raw in text.splitlines():
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        message = entry.get("MESSAGE")
        if isinstance(message, list):  # journald sends non-UTF-8 text as bytes
            message = bytes(b & 0xFF for b in message if isinstance(b, int)).decode(
                "utf-8", "replace"
            )
        found.append(
            LogLine(
                at=_journal_time(entry.get("__REALTIME_TIMESTAMP")),
                unit=str(entry.get("_SYSTEMD_UNIT") or entry.get("SYSLOG_IDENTIFIER") or ""),
                level=str(entry.get("PRIORITY") or ""),
                message=str(message or ""),
            )
        )
    return found


def _journal_time(micros: Any) -> str:
    try:
        return datetime.fromtimestamp(int(micros) / 1e6, UTC).isoformat(timespec="milliseconds")
    except (TypeError, ValueError, OverflowError):
        return ""


class RecentRecords(logging.Handler):
    """The process's own last log records (the sim system's journal)."""

    def __init__(self, keep: int = RECENT_RECORDS) -> None:
        super().__init__(logging.INFO)
        self._lines: collections.deque[LogLine] = collections.deque(maxlen=keep)
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        at = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        line = LogLine(at, record.name, record.levelname, record.getMessage())
        with self._guard:
            self._lines.append(line)

    def lines(self, count: int) -> list[LogLine]:
        with self._guard:
            return list(self._lines)[-count:]


def build_system(config: DeviceConfig) -> System:
    """The implementation ``commands.system`` names."""
    if config.commands.system == "systemd":
        return SystemdSystem()
    records = RecentRecords()
    logging.getLogger().addHandler(records)
    return SimSystem(journal_file=config.store.path.parent / SIM_JOURNAL, records=records)
