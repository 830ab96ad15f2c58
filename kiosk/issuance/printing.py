"""Printers for certificate issuance (the port is
:class:`~kiosk.issuance.ports.Printer`): submit a PDF, follow the job, know
the printer's state (paper out, jammed, offline) before charging.

* :class:`CupsPrinter` drives a CUPS queue over IPP with pycups: the
  printer's state reasons (``media-empty``, ``media-jam``), job submission
  and each job's IPP state (completed, or canceled/aborted = not printed).
* :class:`FilePrinter` is a file-backed queue for tests and the demo: jobs
  are PDF files in a spool folder, the printer's state is a word in a state
  file that tests and the demo change ("ok", "out_of_paper", "jammed",
  "offline").
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from kiosk.errors import KioskError

if TYPE_CHECKING:  # the port's module imports this one's states
    from kiosk.issuance.ports import Printer

_T = TypeVar("_T")


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


def check_printable(printer: Printer, pdf: bytes) -> None:
    """Before a job: the printer ready (else PrinterError with its state) and
    the document a PDF (else ValueError)."""
    current = printer.state()
    if current is not PrinterState.OK:
        raise PrinterError(current)
    if not pdf.startswith(b"%PDF-"):
        raise ValueError("not a PDF document")


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
        check_printable(self, pdf)
        job_id = f"job-{next(self._ids):06d}"
        (self.spool / f"{job_id}.pdf").write_bytes(pdf)
        (self.spool / f"{job_id}.title").write_text(title)
        return job_id

    def job_state(self, job_id: str) -> JobState:
        if not (self.spool / f"{job_id}.pdf").exists():
            return JobState.FAILED
        return JobState.DONE if self.state() is PrinterState.OK else JobState.FAILED

    def cancel(self, job_id: str) -> None:
        (self.spool / f"{job_id}.pdf").unlink(missing_ok=True)


_REASONS = {
    "media-empty": PrinterState.OUT_OF_PAPER,
    "media-needed": PrinterState.OUT_OF_PAPER,
    "media-jam": PrinterState.JAMMED,
    "offline": PrinterState.OFFLINE,
    "shutdown": PrinterState.OFFLINE,
    "connecting-to-device": PrinterState.OFFLINE,
}
# IPP job-state values (RFC 8011): pending, held, processing, stopped are not
# finished; completed is done; canceled and aborted mean nothing was printed.
_JOB_ACTIVE = frozenset({3, 4, 5, 6})
_JOB_COMPLETED = 9
_PRINTER_PROCESSING, _PRINTER_STOPPED = 4, 5


class CupsConnection(Protocol):
    """The part of ``cups.Connection`` (pycups) the adapter uses."""

    def getPrinterAttributes(
        self, name: str, requested_attributes: list[str]
    ) -> dict[str, Any]: ...

    def printFile(
        self, printer: str, filename: str, title: str, options: dict[str, str]
    ) -> int: ...

    def getJobAttributes(self, jobid: int, requested_attributes: list[str]) -> dict[str, Any]: ...

    def cancelJob(self, jobid: int) -> None: ...


def pycups_connection(server: str) -> CupsConnection:
    """A new connection to ``host:port`` (or the local default): one per call,
    because a pycups connection must not be shared between threads."""
    import cups

    if not server:
        return cast(CupsConnection, cups.Connection())
    host, _, port = server.rpartition(":")
    # printFile takes the scheduler from libcups' (thread-local) defaults,
    # not from the connection, so set both in the calling thread.
    cups.setServer(host)
    cups.setPort(int(port))
    return cast(CupsConnection, cups.Connection(host=host, port=int(port)))


def _cups_errors() -> tuple[type[Exception], ...]:
    """What a pycups call raises when the scheduler or the queue fails."""
    try:
        import cups
    except ImportError:  # pycups missing: only a fake connection can be in use
        return (RuntimeError, OSError)
    return (cups.IPPError, cups.HTTPError, RuntimeError, OSError)


@dataclass
class CupsPrinter:
    """A CUPS queue over IPP (pycups): the printer's state and reasons, job
    submission, and each job's IPP state, so a job that was canceled or
    aborted is never taken for a printed certificate."""

    queue: str
    server: str = ""  # host:port; empty = the local scheduler
    connect: Callable[[str], CupsConnection] = pycups_connection

    def _call(self, what: str, call: Callable[[CupsConnection], _T]) -> _T:
        try:
            return call(self.connect(self.server))
        except _cups_errors() as exc:
            raise PrinterError(PrinterState.OFFLINE, f"{what}: {exc}") from exc

    def state(self) -> PrinterState:
        """Paper out or jammed while the queue prints or is stopped; a stopped
        queue otherwise is offline. An idle queue's reasons are what the
        backend said during the last job and clear on the next one, so they
        do not block printing after staff fixed the printer."""
        attrs = self._call(
            "printer state",
            lambda c: c.getPrinterAttributes(
                name=self.queue,
                requested_attributes=[
                    "printer-state",
                    "printer-state-reasons",
                    "printer-is-accepting-jobs",
                ],
            ),
        )
        printer_state = attrs.get("printer-state")
        if printer_state in (_PRINTER_PROCESSING, _PRINTER_STOPPED):
            reasons = attrs.get("printer-state-reasons") or []
            for reason, state in _REASONS.items():
                if any(
                    str(r).startswith(reason) and not str(r).endswith("-report") for r in reasons
                ):
                    return state
        if printer_state == _PRINTER_STOPPED or not attrs.get("printer-is-accepting-jobs", True):
            return PrinterState.OFFLINE
        return PrinterState.OK

    def submit(self, pdf: bytes, title: str) -> str:
        check_printable(self, pdf)
        with tempfile.NamedTemporaryFile(suffix=".pdf") as document:
            document.write(pdf)
            document.flush()
            job = self._call(
                "print",
                lambda c: c.printFile(
                    self.queue,
                    document.name,
                    title,
                    {"media": "A4", "document-format": "application/pdf"},
                ),
            )
        return str(job)

    def job_state(self, job_id: str) -> JobState:
        attrs = self._call("job state", lambda c: c.getJobAttributes(int(job_id), ["job-state"]))
        state = int(attrs.get("job-state", 0))
        if state in _JOB_ACTIVE:
            return JobState.QUEUED
        return JobState.DONE if state == _JOB_COMPLETED else JobState.FAILED

    def cancel(self, job_id: str) -> None:
        self._call("cancel", lambda c: c.cancelJob(int(job_id)))
