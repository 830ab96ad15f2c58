"""The real central API app (``central.api.app.create_app``) served by uvicorn on
a free loopback port, in a thread of the test process, optionally over TLS.

Used by the doctor tests (central's health endpoint) and the rollout tests
(the health gate polls ``GET /api/devices/{id}`` with a bearer token).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import uvicorn

from central.api.app import create_app
from central.api.tokens import TokenStore
from central.db.engine import Database
from central.ingest.store import IngestStore
from contracts.mqtt import Health, Status
from tests.harness.keys import fixed_code_key
from tests.harness.services import ServiceError, free_port, port_open, wait_until


@dataclass
class CentralApi:
    """``start()`` serves the app; ``stop()`` ends the server thread."""

    db_path: Path
    tls: tuple[Path, Path] | None = None  # (certificate, key) of the server
    port: int = 0
    token: str = ""
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None
    db: Database = field(init=False)

    def __post_init__(self) -> None:
        self.db = Database(f"sqlite:///{self.db_path}")

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://localhost:{self.port}"

    def start(self) -> CentralApi:
        self.port = self.port or free_port()
        _, self.token = TokenStore(self.db).create("reader", "tests")
        cert, key = self.tls if self.tls else (None, None)
        config = uvicorn.Config(
            create_app(self.db, code_key=fixed_code_key), host="127.0.0.1", port=self.port,
            log_level="warning",
            ssl_certfile=cert, ssl_keyfile=key,
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="central-api", daemon=True)
        self._thread.start()
        wait_until(lambda: port_open(self.port), 15, "the central API to listen")
        return self

    def report(self, device: str, *, online: bool = True, health: bool = True) -> None:
        """What central records when the device's sync agent reports (birth, health)."""
        ingest = IngestStore(self.db, "tests")
        ingest.record_status(device, Status(state="online" if online else "offline", session=1))
        if health:
            ingest.record_health(device, Health(at=datetime.now(UTC), session=1))

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
            if self._thread.is_alive():
                raise ServiceError("the central API thread did not stop")
        self.db.close()
