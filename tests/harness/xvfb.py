"""Xvfb on a free display number, for Kivy tests that render for real."""

from __future__ import annotations

import os
import select
from dataclasses import dataclass
from pathlib import Path

from tests.harness.services import ServiceError, ServiceProcess, require_binary


@dataclass
class Xvfb:
    root: Path
    width: int = 1280
    height: int = 800
    display: str = ""
    process: ServiceProcess | None = None
    _display_fd: int | None = None

    def start(self) -> Xvfb:
        binary = require_binary("Xvfb")
        self.root.mkdir(parents=True, exist_ok=True)
        # -displayfd: Xvfb picks a free display and writes its number to us.
        read_fd, write_fd = os.pipe()
        self.process = ServiceProcess(
            "Xvfb",
            [
                binary, "-displayfd", str(write_fd), "-screen", "0",
                f"{self.width}x{self.height}x24", "-nolisten", "tcp", "-noreset",
            ],
            self.root / "xvfb.log",
        )  # fmt: skip
        self.process.pass_fds = (write_fd,)
        self.process.start()
        os.close(write_fd)
        # The read end stays open while Xvfb runs: Xvfb writes the number
        # again when it starts a new server generation, and a write to a
        # closed pipe is fatal to it ("Cannot write display number to fd",
        # seen once in CI: the Kivy test running then lost its display).
        self._display_fd = read_fd
        ready, _, _ = select.select([read_fd], [], [], 30)
        words = os.read(read_fd, 32).decode().split() if ready else []
        number = words[0] if words else ""
        if not number:
            self.process.stop()
            raise ServiceError(f"Xvfb did not report a display:\n{self.process.log_tail()}")
        self.display = f":{number}"
        return self

    @property
    def env(self) -> dict[str, str]:
        return {"DISPLAY": self.display}

    def stop(self) -> None:
        if self._display_fd is not None:
            os.close(self._display_fd)
            self._display_fd = None
        if self.process is not None:
            self.process.stop()
