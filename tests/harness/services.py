"""Starting and stopping real services for tests: free ports, readiness
waits with deadlines, and stop-by-pid, through the product's one process
supervisor (:mod:`foundation.supervisor`).

Every service is started by the test run itself on free loopback ports (never
the machine's standard ports), with its output in a log file that failures
print, and stopped by its own process id. A service that cannot start raises
:class:`ServiceError`: the tests that need it fail, they are never skipped.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import socket
from collections.abc import Callable, Sequence
from pathlib import Path

from foundation.supervisor import ManagedProcess, ProcessError, port_open
from foundation.supervisor import wait_until as _wait_until

__all__ = [
    "ServiceError",
    "ServiceProcess",
    "free_port",
    "port_open",
    "require_binary",
    "wait_until",
]


class ServiceError(ProcessError):
    """A test service could not be started; the message says why."""


# Test services listen below the kernel's ephemeral range (32768 and up on
# Linux), each pytest-xdist worker in a band of its own. A port the kernel
# hands out for "any free port" is also one it may give an outgoing
# connection, or another worker's service, before ours binds it; a test
# then reaches a stranger (or itself) on "its" broker's port.
_PORT_FLOOR = 10000
_PORT_BAND = 2500


def _port_band() -> range:
    match = re.fullmatch(r"gw(\d+)", os.environ.get("PYTEST_XDIST_WORKER", ""))
    index = int(match.group(1)) + 1 if match else 0
    start = _PORT_FLOOR + (index % 9) * _PORT_BAND
    return range(start, start + _PORT_BAND)


_BAND = _port_band()
_candidates = itertools.cycle(
    itertools.chain(_BAND[os.getpid() % len(_BAND) :], _BAND[: os.getpid() % len(_BAND)])
)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now, from this worker's band, not handed
    out again by this process until the band has gone round."""
    for _ in range(len(_BAND)):
        port = next(_candidates)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    raise ServiceError(f"no free port in {_BAND.start}-{_BAND.stop - 1}")


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.02
) -> None:
    """Poll ``condition`` until true; raise ServiceError after ``timeout`` s."""
    _wait_until(condition, timeout, what, interval, error=ServiceError)


def require_binary(name: str) -> str:
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if Path(p).exists()), None
    )
    if path is None:
        raise ServiceError(f"{name} is not installed (run ./scripts/bootstrap)")
    return path


class ServiceProcess(ManagedProcess):
    """A :class:`~foundation.supervisor.ManagedProcess` whose failures are
    :class:`ServiceError`."""

    def __init__(
        self, name: str, argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        super().__init__(name, argv, log_path, env, error=ServiceError)

    def log_tail(self, lines: int = 30) -> str:
        return self.tail(lines)
