"""The printer port of certificate issuance: submit a PDF, follow the job,
know the printer's state (paper out, jammed, offline) before charging.

* :class:`CupsPrinter` drives a CUPS queue with ``lp`` and ``lpstat`` (the
  commands every CUPS installation has), parsing their answers.
* :class:`FilePrinter` is a file-backed queue for tests and the demo: jobs
  are PDF files in a spool folder, the printer's state is a word in a state
  file that tests and the demo change ("ok", "out_of_paper", "jammed",
  "offline").
"""

from __future__ import annotations

import itertools
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from kiosk.errors import KioskError


class PrinterError(KioskError):
    """The printer cannot print now; ``state`` says why."""

    def __init__(self, state: PrinterState, detail: str = "") -> None:
        self.state = state
        super().__init__(f"printer {state.value}" + (f": {detail}" if detail else ""))


class PrinterState(StrEnum):
    OK = "ok"
    OUT_OF_PAPER = "out_of_paper"
    JAMMED = "jammed"
    OFFLINE = "offline"


class JobState(StrEnum):
    QUEUED = "queued"
    DONE = "done"
    FAILED = "failed"


class Printer(Protocol):
    def state(self) -> PrinterState: ...

    def submit(self, pdf: bytes, title: str) -> str:
        """Queue a PDF; returns the job id. Raises PrinterError when it cannot print."""

    def job_state(self, job_id: str) -> JobState: ...


@dataclass
class FilePrinter:
    spool: Path

    def __post_init__(self) -> None:
        self.spool.mkdir(parents=True, exist_ok=True)
        self._ids = itertools.count(len(list(self.spool.glob("job-*.pdf"))) + 1)

    @property
    def state_file(self) -> Path:
        return self.spool / "printer-state"

    def set_state(self, state: PrinterState) -> None:
        self.state_file.write_text(state.value)

    def state(self) -> PrinterState:
        try:
            return PrinterState(self.state_file.read_text().strip() or "ok")
        except FileNotFoundError:
            return PrinterState.OK
        except ValueError:
            return PrinterState.OFFLINE

    def submit(self, pdf: bytes, title: str) -> str:
        current = self.state()
        if current is not PrinterState.OK:
            raise PrinterError(current)
        if not pdf.startswith(b"%PDF-"):
            raise ValueError("not a PDF document")
        job_id = f"job-{next(self._ids):06d}"
        (self.spool / f"{job_id}.pdf").write_bytes(pdf)
        (self.spool / f"{job_id}.title").write_text(title)
        return job_id

    def job_state(self, job_id: str) -> JobState:
        if not (self.spool / f"{job_id}.pdf").exists():
            return JobState.FAILED
        return JobState.DONE if self.state() is PrinterState.OK else JobState.FAILED


Runner = Callable[[Sequence[str], bytes | None], str]
_REQUEST_ID = re.compile(r"request id is (\S+)")
_REASONS = {
    "media-empty": PrinterState.OUT_OF_PAPER,
    "media-needed": PrinterState.OUT_OF_PAPER,
    "media-jam": PrinterState.JAMMED,
    "offline": PrinterState.OFFLINE,
    "shutdown": PrinterState.OFFLINE,
    "connecting-to-device": PrinterState.OFFLINE,
}


def run_command(argv: Sequence[str], stdin: bytes | None) -> str:
    result = subprocess.run(list(argv), input=stdin, capture_output=True, timeout=15, check=False)
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()
        raise PrinterError(PrinterState.OFFLINE, message or f"{argv[0]} exit {result.returncode}")
    return result.stdout.decode(errors="replace")


@dataclass
class CupsPrinter:
    queue: str
    run: Runner = run_command

    def state(self) -> PrinterState:
        """From ``lpstat -l -p QUEUE``: disabled, or a printer-state-reason."""
        text = self.run(["lpstat", "-l", "-p", self.queue], None)
        if "disabled" in text.split("\n", 1)[0]:
            return PrinterState.OFFLINE
        for reason, state in _REASONS.items():
            if reason in text:
                return state
        return PrinterState.OK

    def submit(self, pdf: bytes, title: str) -> str:
        current = self.state()
        if current is not PrinterState.OK:
            raise PrinterError(current)
        answer = self.run(["lp", "-d", self.queue, "-t", title, "-o", "media=A4", "-"], pdf)
        match = _REQUEST_ID.search(answer)
        if not match:
            raise PrinterError(PrinterState.OFFLINE, f"lp gave no job id: {answer.strip()!r}")
        return match.group(1)

    def job_state(self, job_id: str) -> JobState:
        """Queued while ``lpstat -o`` lists it; then done, unless the printer failed."""
        if job_id in self.run(["lpstat", "-o", self.queue], None):
            return JobState.QUEUED
        completed = self.run(["lpstat", "-W", "completed", "-o", self.queue], None)
        return JobState.DONE if job_id in completed else JobState.FAILED
