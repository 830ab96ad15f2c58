"""A real pcscd with vsmartcard's vpcd driver, private to the test run.

pcscd 1.9 always serves ``/run/pcscd/pcscd.comm``, so to avoid any pcscd the
machine already runs, ours starts in its own mount namespace (``unshare``)
with a temp folder bound over ``/run/pcscd``. Clients find it through
``PCSCLITE_CSOCK_NAME``, which libpcsclite reads when it first connects: set
it (``Pcscd.env``) before the first PC/SC call of a process.

The reader configuration is generated too: one vpcd entry whose base port is
free, which gives two reader slots, ``Virtual PCD 00 00`` on ``port`` and
``Virtual PCD 00 01`` on ``port + 1``. pcscd runs in the foreground, so the
pid we hold is the daemon's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.services import (
    ServiceError,
    ServiceProcess,
    free_port_pair,
    require_binary,
    wait_until,
)

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
READER_NAMES = ("Virtual PCD 00 00", "Virtual PCD 00 01")


@dataclass
class Pcscd:
    root: Path
    port: int = 0
    apdu_log: bool = True
    process: ServiceProcess | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def socket_path(self) -> Path:
        return self.root / "run" / "pcscd.comm"

    @property
    def ports(self) -> tuple[int, int]:
        return self.port, self.port + 1

    def start(self) -> Pcscd:
        pcscd = require_binary("pcscd")
        if not VPCD_DRIVER.exists():
            raise ServiceError(
                f"{VPCD_DRIVER} missing: install vsmartcard-vpcd (./scripts/bootstrap)"
            )
        unshare = require_binary("unshare")
        conf_dir, run_dir = self.root / "reader.conf.d", self.root / "run"
        conf_dir.mkdir(parents=True, exist_ok=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port_pair()
        (conf_dir / "vpcd").write_text(
            f'FRIENDLYNAME "Virtual PCD"\nDEVICENAME /dev/null:0x{self.port:X}\n'
            f"LIBPATH {VPCD_DRIVER}\nCHANNELID 0x{self.port:X}\n"
        )
        flags = "-f -i -a" if self.apdu_log else "-f -i"
        # Non-root developers get a user namespace in which the bind mount works.
        ns = "-m" if os.geteuid() == 0 else "-Urm"
        script = (
            f"mkdir -p /run/pcscd && mount --bind {run_dir} /run/pcscd"
            f" && exec {pcscd} {flags} -c {conf_dir}"
        )
        self.process = ServiceProcess(
            "pcscd", [unshare, ns, "sh", "-c", script], self.root / "pcscd.log"
        )
        self.process.start()
        wait_until(
            self._ready,
            10,
            "pcscd to be ready",
        )
        self.env = {"PCSCLITE_CSOCK_NAME": str(self.socket_path)}
        return self

    def _ready(self) -> bool:
        # Not by connecting to the vpcd ports: a connection is a card insertion.
        assert self.process is not None
        self.process.check_alive()
        return self.socket_path.exists() and "daemon ready" in self.log_text()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        return (self.root / "pcscd.log").read_text(errors="replace")
