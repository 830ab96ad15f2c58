"""Start the real ``python -m lockctl serve`` with gpiozero's MockFactory for tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from lockctl.client import LockClient
from lockctl.errors import LockctlError
from sync.outbox import Outbox
from sync.store import open_store
from tests.harness import clockrun
from tests.harness.services import ServiceError, ServiceProcess, wait_until

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """\
[device]
id = "dev-a"
facility = "fac-1"
[store]
path = "device.db"
[lock]
socket = "run/lockctl.sock"
socket_group = "{group}"
pin_factory = "mock"
default_unlock_seconds = 5
max_unlock_seconds = 30
sample_interval_seconds = 0.02
[[doors]]
id = "room-a"
relay_pin = 17
contact_pin = 27
exit_button_pin = 22
buzzer_pin = 23
led_pin = 24
held_open_seconds = {held_open}
forced_open_grace_seconds = 0.5
[[doors]]
id = "room-b"
relay_pin = 5
contact_pin = 6
"""


class LockDaemon:
    """One lockctl daemon process on mock pins, in its own folder."""

    def __init__(
        self,
        folder: Path,
        *,
        group: str = "",
        held_open: float = 30,
        store: str = "",
        command_key: Path | None = None,
        clock_trusted: bool | None = None,
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.config = folder / "device.toml"
        text = CONFIG.format(group=group, held_open=held_open)
        if store:
            text = text.replace('path = "device.db"', f'path = "{store}"')
        if command_key is not None:
            text += f'[commands]\npublic_key_file = "{command_key}"\nsystem = "sim"\n'
        self.config.write_text(text)
        # None: the kernel's answer; True/False: through tests.harness.clockrun.
        self.clock_trusted = clock_trusted
        self.socket = folder / "run" / "lockctl.sock"
        self.db = folder / "device.db"
        self.log = folder / "lockctl.log"
        self.proc: ServiceProcess | None = None

    def start(self, *extra: str, env: dict[str, str] | None = None, wait: bool = True) -> None:
        args = ["serve", "--config", str(self.config), *extra]
        argv = [sys.executable, "-m", "lockctl", *args]
        if self.clock_trusted is not None:
            argv = clockrun.argv(self.clock_trusted, "lockctl", *args)
        self.proc = ServiceProcess(
            "lockctl", argv, self.log, env={"PYTHONPATH": str(ROOT), **(env or {})}
        )
        self.proc.start()
        if wait:
            wait_until(self.ready, 20, "lockctl to accept on its socket")

    def ready(self) -> bool:
        assert self.proc is not None
        self.proc.check_alive()
        try:
            with LockClient(self.socket, timeout=2) as client:
                client.status()
            return True
        except LockctlError:
            return False

    def client(self) -> LockClient:
        return LockClient(self.socket, timeout=5)

    def status(self) -> dict[str, Any]:
        with self.client() as client:
            return client.status()

    def door(self, door: str) -> dict[str, Any]:
        return next(d for d in self.status()["doors"] if d["door"] == door)

    def events(self, type_prefix: str = "") -> list[dict[str, Any]]:
        if not self.db.exists():
            return []
        with open_store(self.db) as store:
            events = Outbox(store).pending(limit=10_000)
        return [e.to_wire() for e in events if e.type.startswith(type_prefix)]

    def wait_event(self, type_: str, timeout: float = 10, **data: Any) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        def seen() -> bool:
            found[:] = [
                e for e in self.events(type_)
                if e["type"] == type_ and all(e["data"].get(k) == v for k, v in data.items())
            ]  # fmt: skip
            return bool(found)

        try:
            wait_until(seen, timeout, f"event {type_} {data}")
        except ServiceError:
            raise AssertionError(
                f"no {type_} {data}; outbox: {json.dumps(self.events())}\nlog:\n{self.log_text()}"
            ) from None
        return found[-1]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log_text().splitlines() if line.startswith("{")]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
