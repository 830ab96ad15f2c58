"""Device-sync test helpers: a device config for a harness broker, the sync
agent and the test-only central responder as real processes."""

from __future__ import annotations

import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.harness import clockrun
from tests.harness.mosquitto import Mosquitto
from tests.harness.services import ServiceProcess, wait_until


def write_device_config(
    broker: Mosquitto, folder: Path, device: str, facility: str, **sync: float
) -> Path:
    """A device.toml for ``device`` on the broker's TLS listener; ``sync`` overrides [sync]."""
    identity = broker.identity(device)
    settings = {
        "batch_size": 100,
        "max_inflight_batches": 4,
        "health_interval_seconds": 1,
        "ack_timeout_seconds": 3,
        "reconnect_min_seconds": 0.1,
        "reconnect_max_seconds": 1,
        "poll_interval_seconds": 0.2,
        "resync_timeout_seconds": 2,
        **sync,
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "device.toml"
    path.write_text(
        "\n".join(
            [
                "[device]",
                f'id = "{device}"',
                f'facility = "{facility}"',
                "[logging]",
                'level = "INFO"',
                "[store]",
                f'path = "{folder / "device.db"}"',
                "[broker]",
                'host = "localhost"',
                f"port = {broker.tls_port}",
                "keepalive_seconds = 5",
                "[broker.tls]",
                f'ca_file = "{identity.ca}"',
                f'cert_file = "{identity.cert}"',
                f'key_file = "{identity.key}"',
                "[sync]",
                *(f"{k} = {v}" for k, v in settings.items()),
                "",
            ]
        )
    )
    return path


def agent_process(config: Path, log: Path) -> ServiceProcess:
    """The real agent (``python -m sync run``) with a trusted clock injected."""
    return ServiceProcess(
        "sync agent", clockrun.argv(True, "sync", "run", "--config", str(config)), log
    )


@dataclass
class CentralStub:
    """The test-only central responder (tests/harness/central_stub.py) as a process."""

    broker: Mosquitto
    root: Path
    process: ServiceProcess | None = None

    @property
    def db_path(self) -> Path:
        return self.root / "central.db"

    def start(self, die_after_commits: int | None = None) -> CentralStub:
        identity = self.broker.identity("central")
        ready = self.root / "central.ready"
        ready.unlink(missing_ok=True)
        argv = [
            sys.executable, "-m", "tests.harness.central_stub",
            "--port", str(self.broker.tls_port),
            "--ca", str(identity.ca), "--cert", str(identity.cert), "--key", str(identity.key),
            "--db", str(self.db_path), "--ready", str(ready),
        ]  # fmt: skip
        if die_after_commits is not None:
            argv += ["--die-after-commits", str(die_after_commits)]
        self.root.mkdir(parents=True, exist_ok=True)
        self.process = ServiceProcess("central stub", argv, self.root / "central.log")
        self.process.start()
        process = self.process
        wait_until(lambda: process.check_alive() and ready.exists(), 15, "central stub ready")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def query(self, sql: str) -> list[tuple[object, ...]]:
        if not self.db_path.exists():
            return []
        with sqlite3.connect(self.db_path, timeout=10) as conn:
            return list(conn.execute(sql))

    def count(self) -> int:
        rows = self.query("SELECT count(*) FROM events")
        return int(str(rows[0][0])) if rows else 0
