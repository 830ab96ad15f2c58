"""The CUPS printer adapter through a real scheduler: IPP (pycups) against a
private cupsd whose queue prints to files and can run out of paper or jam."""

from __future__ import annotations

import pytest

from central.issuance.pdf import CertificateDocument, render_certificate
from kiosk.issuance.printing import CupsPrinter, JobState, PrinterError, PrinterState
from tests.harness.cups import PrivateCups
from tests.harness.services import wait_until


@pytest.fixture
def pdf() -> bytes:
    import datetime as dt

    return render_certificate(
        CertificateDocument(
            "住民票の写し", "R8-000001", dt.date(2026, 11, 28), "デモ市", ["テスト"]
        )
    )


def test_cups_printer_prints_pdf_through_real_scheduler(cups: PrivateCups, pdf: bytes) -> None:
    printer = CupsPrinter(cups.queue, server=cups.server)
    assert printer.state() is PrinterState.OK
    job = printer.submit(pdf, "住民票の写し")
    assert job.isdigit()
    wait_until(lambda: printer.job_state(job) is JobState.DONE, 15, "the job to complete")
    (printed,) = cups.printed()
    assert printed.read_bytes() == pdf


@pytest.mark.parametrize(
    ("fault", "state"),
    [("out_of_paper", PrinterState.OUT_OF_PAPER), ("jammed", PrinterState.JAMMED)],
)
def test_cups_printer_reports_fault_during_job_and_cancels(
    cups: PrivateCups, pdf: bytes, fault: str, state: PrinterState
) -> None:
    printer = CupsPrinter(cups.queue, server=cups.server)
    cups.set_printer(fault)
    job = printer.submit(pdf, "印鑑登録証明書")
    wait_until(lambda: printer.state() is state, 15, f"CUPS to report {fault}")
    assert printer.job_state(job) is JobState.QUEUED  # held, not printed
    with pytest.raises(PrinterError) as refused:
        printer.submit(pdf, "second")
    assert refused.value.state is state
    printer.cancel(job)
    assert printer.job_state(job) is JobState.FAILED
    cups.resume()
    wait_until(lambda: printer.state() is PrinterState.OK, 15, "the printer to recover")
    assert cups.printed() == []


def test_cups_printer_unknown_queue_is_offline(cups: PrivateCups, pdf: bytes) -> None:
    printer = CupsPrinter("no-such-queue", server=cups.server)
    with pytest.raises(PrinterError) as failed:
        printer.state()
    assert failed.value.state is PrinterState.OFFLINE


def test_cups_printer_disabled_queue_is_offline(cups: PrivateCups) -> None:
    cups.admin("cupsdisable", cups.queue)
    assert CupsPrinter(cups.queue, server=cups.server).state() is PrinterState.OFFLINE
