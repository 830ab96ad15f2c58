"""One way to run helper processes: the demo's services, the test harness's
services and the private pcscd all start and stop through here.

A :class:`ManagedProcess` is one background process in its own session with
its output appended to a log file; readiness is waited for with a deadline
and an early exit is reported with the log's tail; it is stopped by its own
pid (SIGCONT for a frozen one, SIGTERM, then SIGKILL after a grace period).
A :class:`Supervisor` owns named processes (logs in one folder) and stops
them all, last started first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from foundation.errors import ProductError


class ProcessError(ProductError, RuntimeError):
    """A helper process could not start or get ready; the message says which and why."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    interval: float = 0.02,
    error: type[ProcessError] = ProcessError,
) -> None:
    """Poll ``condition`` until true; raise ``error`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise error(f"timed out after {timeout:.0f} s waiting for {what}")


class ManagedProcess:
    """One background process with its log file; stopped by pid."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        *,
        error: type[ProcessError] = ProcessError,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self.error = error
        self.proc: subprocess.Popen[bytes] | None = None
        self.pass_fds: tuple[int, ...] = ()

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} not started"
        return self.proc.pid

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **(self.env or {})}, start_new_session=True,
                pass_fds=self.pass_fds,
            )  # fmt: skip
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def check_alive(self) -> bool:
        """True, or the error naming the exit code and the log's tail."""
        if not self.alive():
            code = self.returncode()
            raise self.error(f"{self.name} exited (code {code}) at start:\n{self.tail()}")
        return True

    def wait_ready(self, ready: Callable[[], bool], timeout: float) -> None:
        """Until ``ready()``; an exit before that, or the deadline, is an error."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.check_alive() and ready():
                return
            time.sleep(0.05)
        raise self.error(f"{self.name} not ready after {timeout:.0f} s:\n{self.tail()}")

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM (after SIGCONT, in case it is frozen), SIGKILL after
        ``grace`` s; the exit code, None if it never started."""
        if self.proc is None or self.proc.poll() is not None:
            return self.returncode()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGCONT)
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(grace)

    def kill(self) -> None:
        """SIGKILL now (tests of crash recovery)."""
        if self.proc is not None and self.alive():
            self.proc.kill()
            self.proc.wait(5)

    def close(self) -> None:
        self.stop()


class Supervisor:
    """Named processes with their logs in ``logs``; stopped together."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: dict[str, ManagedProcess] = {}

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.procs[name] = ManagedProcess(name, argv, self.logs / f"{name}.log", env).start()

    def python(self, name: str, args: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.start(name, [sys.executable, *args], env)

    def adopt(self, process: ManagedProcess) -> None:
        """Stop a process started elsewhere together with the rest."""
        self.procs[process.name] = process

    def wait_for(self, name: str, ready: Callable[[], bool], timeout: float = 20.0) -> None:
        self.procs[name].wait_ready(ready, timeout)

    def tail(self, name: str, lines: int = 15) -> str:
        return self.procs[name].tail(lines)

    def stop(self, name: str, grace: float = 5.0) -> int | None:
        process = self.procs.pop(name, None)
        return None if process is None else process.stop(grace)

    def stop_all(self) -> None:
        # Last started first: the UI before the services it uses.
        for name in reversed(list(self.procs)):
            self.stop(name)

    def failed(self) -> list[str]:
        return [name for name, process in self.procs.items() if not process.alive()]

    def close(self) -> None:
        self.stop_all()
