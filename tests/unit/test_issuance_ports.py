"""Issuance ports: the payment simulator (nobody pays for what they did not
get), the file-backed printer and the CUPS adapter's mapping of IPP attributes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kiosk.issuance.payment import (
    PaymentDeclined,
    PaymentError,
    PaymentState,
    PaymentUnavailable,
    SimulatedTerminal,
)
from kiosk.issuance.printing import CupsPrinter, FilePrinter, JobState, PrinterError, PrinterState

PDF = b"%PDF-1.7\n...\n%%EOF\n"


def test_payment_simulator_charge_void_refund_and_ledger() -> None:
    terminal = SimulatedTerminal(script=["ok", "declined", "unavailable", "ok"])
    first = terminal.charge(300, "order-1")
    with pytest.raises(PaymentDeclined):
        terminal.charge(300, "order-2")
    with pytest.raises(PaymentUnavailable):
        terminal.charge(300, "order-3")
    second = terminal.charge(450, "order-4")
    terminal.void(first)
    terminal.refund(second)
    assert (first.state, second.state) == (PaymentState.VOIDED, PaymentState.REFUNDED)
    assert terminal.balance() == 0  # nothing kept for certificates not handed out
    with pytest.raises(PaymentError):
        terminal.refund(second)
    assert [kind for kind, _, _ in terminal.ledger] == [
        "captured",
        "declined",
        "captured",
        "voided",
        "refunded",
    ]


def test_file_printer_states_and_jobs(tmp_path: Path) -> None:
    printer = FilePrinter(tmp_path / "spool")
    job = printer.submit(PDF, "住民票の写し")
    assert printer.job_state(job) is JobState.DONE
    assert (tmp_path / "spool" / f"{job}.pdf").read_bytes() == PDF
    printer.set_state(PrinterState.OUT_OF_PAPER)
    with pytest.raises(PrinterError) as err:
        printer.submit(PDF, "x")
    assert err.value.state is PrinterState.OUT_OF_PAPER
    assert printer.job_state(job) is JobState.FAILED
    with pytest.raises(ValueError):
        FilePrinter(tmp_path / "spool2").submit(b"not a pdf", "x")


class FakeCups:
    """Answers like pycups' Connection (unit test of the mapping only; the
    integration test drives a real cupsd)."""

    def __init__(self, printer: dict[str, Any], job_state: int = 3) -> None:
        self.printer, self.job = printer, job_state
        self.printed: list[tuple[str, bytes, str]] = []
        self.cancelled: list[int] = []

    def getPrinterAttributes(self, name: str, requested_attributes: list[str]) -> dict[str, Any]:
        return self.printer

    def printFile(self, printer: str, filename: str, title: str, options: dict[str, str]) -> int:
        self.printed.append((printer, Path(filename).read_bytes(), title))
        return 42

    def getJobAttributes(self, jobid: int, requested_attributes: list[str]) -> dict[str, Any]:
        return {"job-state": self.job}

    def cancelJob(self, jobid: int) -> None:
        self.cancelled.append(jobid)


IDLE: dict[str, Any] = {"printer-state": 3, "printer-state-reasons": ["none"]}


@pytest.mark.parametrize(
    ("attrs", "state"),
    [
        (IDLE, PrinterState.OK),
        (
            {"printer-state": 4, "printer-state-reasons": ["media-empty-error"]},
            PrinterState.OUT_OF_PAPER,
        ),
        (
            {"printer-state": 5, "printer-state-reasons": ["media-empty", "paused"]},
            PrinterState.OUT_OF_PAPER,
        ),
        # Idle: reasons left from the last job clear on the next one.
        ({"printer-state": 3, "printer-state-reasons": ["media-jam"]}, PrinterState.OK),
        ({"printer-state": 4, "printer-state-reasons": ["media-jam-error"]}, PrinterState.JAMMED),
        ({"printer-state": 5, "printer-state-reasons": ["paused"]}, PrinterState.OFFLINE),
        (
            {"printer-state": 3, "printer-state-reasons": [], "printer-is-accepting-jobs": False},
            PrinterState.OFFLINE,
        ),
    ],
)
def test_cups_printer_state_from_ipp_attributes(attrs: dict[str, Any], state: PrinterState) -> None:
    fake = FakeCups(attrs)
    assert CupsPrinter("kiosk", connect=lambda _server: fake).state() is state


@pytest.mark.parametrize(
    ("ipp_state", "job"),
    [(3, JobState.QUEUED), (4, JobState.QUEUED), (5, JobState.QUEUED), (6, JobState.QUEUED),
     (9, JobState.DONE), (7, JobState.FAILED), (8, JobState.FAILED)],
)  # fmt: skip
def test_cups_printer_job_state_from_ipp(ipp_state: int, job: JobState) -> None:
    fake = FakeCups(IDLE, ipp_state)
    printer = CupsPrinter("kiosk", connect=lambda _server: fake)
    assert printer.submit(PDF, "住民票の写し") == "42"
    assert fake.printed == [("kiosk", PDF, "住民票の写し")]
    assert printer.job_state("42") is job


def test_cups_printer_refuses_when_not_ready_and_maps_ipp_errors() -> None:
    fake = FakeCups({"printer-state": 5, "printer-state-reasons": ["media-jam"]})
    with pytest.raises(PrinterError) as refused:
        CupsPrinter("kiosk", connect=lambda _server: fake).submit(PDF, "x")
    assert refused.value.state is PrinterState.JAMMED and fake.printed == []

    def unreachable(_server: str) -> FakeCups:
        raise RuntimeError("Unable to connect to server")

    with pytest.raises(PrinterError) as failed:
        CupsPrinter("kiosk", connect=unreachable).state()
    assert failed.value.state is PrinterState.OFFLINE
