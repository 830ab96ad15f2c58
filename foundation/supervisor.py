"""Starts and stops the demo's processes: each with its log file, stopped by
pid (SIGTERM, then SIGKILL after a grace period), all of them on exit."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class DemoError(RuntimeError):
    """A demo component could not start; the message says which and why."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Supervisor:
    logs: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(
                list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})}, start_new_session=True,
            )  # fmt: skip

    def adopt(self, name: str, proc: subprocess.Popen[bytes] | None) -> None:
        """Stop a process started elsewhere together with the rest."""
        if proc is not None:
            self.procs[name] = proc

    def python(self, name: str, args: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.start(name, [sys.executable, *args], env)

    def wait_for(self, name: str, ready: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        proc = self.procs[name]
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DemoError(f"{name} exited with code {proc.returncode}:\n{self.tail(name)}")
            if ready():
                return
            time.sleep(0.1)
        raise DemoError(f"{name} not ready after {timeout:.0f} s:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 15) -> str:
        try:
            text = (self.logs / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, name: str, grace: float = 5.0) -> int | None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return None if proc is None else proc.returncode
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            return proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(grace)

    def stop_all(self) -> None:
        # Last started first: the UI before the services it uses.
        for name in reversed(list(self.procs)):
            self.stop(name)

    def failed(self) -> list[str]:
        return [name for name, proc in self.procs.items() if proc.poll() is not None]
