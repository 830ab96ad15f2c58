"""Starting and stopping real services for tests: free ports, readiness
waits with deadlines, and stop-by-pid, through the product's one process
supervisor (:mod:`foundation.supervisor`).

Every service is started by the test run itself on free loopback ports (never
the machine's standard ports), with its output in a log file that failures
print, and stopped by its own process id. A service that cannot start raises
:class:`ServiceError`: the tests that need it fail, they are never skipped.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from foundation.supervisor import ManagedProcess, ProcessError, free_port, port_open
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
