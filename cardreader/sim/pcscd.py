"""A private pcscd with vsmartcard's vpcd driver, for tests and the demo.

pcscd 1.9 always serves ``/run/pcscd/pcscd.comm``, so to stay clear of any
pcscd the machine already runs, ours starts in its own mount namespace
(``unshare``) with a folder of ours bound over ``/run/pcscd``. Clients find
it through ``PCSCLITE_CSOCK_NAME`` (:attr:`PrivatePcscd.env`), which
libpcsclite reads when a process first connects.

The reader configuration is generated: one vpcd entry on a free base port
gives two reader slots, ``Virtual PCD 00 00`` on ``port`` and ``Virtual PCD
00 01`` on ``port + 1`` (loopback connections from
:class:`~cardreader.sim.vpcd.VpcdLink`). pcscd runs in the foreground, so the
process we hold is the daemon. Never on a production kiosk: vpcd listens on
all interfaces.
"""

from __future__ import annotations

import os
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path

from foundation.supervisor import ManagedProcess, ProcessError

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
READER_NAMES = ("Virtual PCD 00 00", "Virtual PCD 00 01")


class PcscdError(ProcessError):
    """The private pcscd could not be started; the message says why."""


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))  # noqa: S104 - probing: vpcd binds all interfaces
        except OSError:
            return False
    return True


def free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port < 65535 and _is_free(port) and _is_free(port + 1):
            return port
    raise PcscdError("no two consecutive free ports found")


def _binary(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and Path(candidate).exists():
            return candidate
    raise PcscdError(f"{name} is not installed (run ./scripts/bootstrap)")


@dataclass
class PrivatePcscd:
    root: Path
    port: int = 0
    apdu_log: bool = True
    env: dict[str, str] = field(default_factory=dict)
    process: ManagedProcess | None = None

    @property
    def socket_path(self) -> Path:
        return self.root / "run" / "pcscd.comm"

    @property
    def ports(self) -> tuple[int, int]:
        return self.port, self.port + 1

    @property
    def log_path(self) -> Path:
        return self.root / "pcscd.log"

    def start(self, timeout: float = 10.0) -> PrivatePcscd:
        pcscd, unshare = _binary("pcscd"), _binary("unshare")
        if not VPCD_DRIVER.exists():
            raise PcscdError(
                f"{VPCD_DRIVER} missing: install vsmartcard-vpcd (./scripts/bootstrap)"
            )
        conf_dir, run_dir = self.root / "reader.conf.d", self.root / "run"
        conf_dir.mkdir(parents=True, exist_ok=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port_pair()
        (conf_dir / "vpcd").write_text(
            f'FRIENDLYNAME "Virtual PCD"\nDEVICENAME /dev/null:0x{self.port:X}\n'
            f"LIBPATH {VPCD_DRIVER}\nCHANNELID 0x{self.port:X}\n"
        )
        flags = "-f -i -a" if self.apdu_log else "-f -i"
        # Non-root users get a user namespace in which the bind mount works.
        namespace = "-m" if os.geteuid() == 0 else "-Urm"
        script = (
            f"mkdir -p /run/pcscd && mount --bind {run_dir} /run/pcscd"
            f" && exec {pcscd} {flags} -c {conf_dir}"
        )
        self.process = ManagedProcess(
            "pcscd", [unshare, namespace, "sh", "-c", script], self.log_path, error=PcscdError
        ).start()
        try:  # not by connecting to the vpcd ports: a connection is a card insertion
            self.process.wait_ready(
                lambda: self.socket_path.exists() and "daemon ready" in self.log_text(), timeout
            )
        except PcscdError:
            self.process.stop()
            raise
        self.env = {"PCSCLITE_CSOCK_NAME": str(self.socket_path)}
        return self

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def stop(self, timeout: float = 5.0) -> None:
        if self.process is not None:
            self.process.stop(timeout)

    def restart(self) -> None:
        self.stop()
        self.start()
