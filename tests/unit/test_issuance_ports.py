"""Issuance ports: the payment simulator (nobody pays for what they did not
get), the file-backed printer and the CUPS adapter's parsing of lp/lpstat."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from kiosk.payment import (
    PaymentDeclined,
    PaymentError,
    PaymentState,
    PaymentUnavailable,
    SimulatedTerminal,
)
from kiosk.printing import CupsPrinter, FilePrinter, JobState, PrinterError, PrinterState

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


class FakeLp:
    """Answers lp/lpstat like CUPS 2.4 does (unit test of the parsing only)."""

    def __init__(self, status: str, queued: str = "", completed: str = "") -> None:
        self.status, self.queued, self.completed = status, queued, completed
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], stdin: bytes | None) -> str:
        self.calls.append(list(argv))
        if argv[0] == "lp":
            assert stdin == PDF
            return "request id is kiosk-42 (1 file(s))\n"
        if "-p" in argv:
            return self.status
        return self.completed if "completed" in argv else self.queued


IDLE = "printer kiosk is idle.  enabled since Sat 28 Nov 2026\n\tAlerts: none\n"


@pytest.mark.parametrize(
    ("status", "state"),
    [
        (IDLE, PrinterState.OK),
        (
            "printer kiosk is idle.  enabled since x\n\tAlerts: media-empty-warning\n",
            PrinterState.OUT_OF_PAPER,
        ),
        ("printer kiosk now printing kiosk-1.\n\tAlerts: media-jam-error\n", PrinterState.JAMMED),
        ("printer kiosk disabled since x -\n\tPaused\n", PrinterState.OFFLINE),
    ],
)
def test_cups_printer_state_from_lpstat(status: str, state: PrinterState) -> None:
    assert CupsPrinter("kiosk", run=FakeLp(status)).state() is state


def test_cups_printer_submit_and_follow_job() -> None:
    lp = FakeLp(IDLE, queued="kiosk-42 root 1024 Sat 28 Nov 2026\n")
    printer = CupsPrinter("kiosk", run=lp)
    job = printer.submit(PDF, "住民票の写し")
    assert job == "kiosk-42"
    assert ["lp", "-d", "kiosk", "-t", "住民票の写し", "-o", "media=A4", "-"] in lp.calls
    assert printer.job_state(job) is JobState.QUEUED
    lp.queued, lp.completed = "", "kiosk-42 root 1024 Sat 28 Nov 2026\n"
    assert printer.job_state(job) is JobState.DONE
    lp.completed = ""
    assert printer.job_state(job) is JobState.FAILED
