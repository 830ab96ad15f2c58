"""Certificate issuance speed, each against a raw baseline in the same run.

    python bench/issuance.py [--rounds 20]

* Card placed -> PIN screen ready: from the card watcher's "inserted" event
  (pcscd reporting the virtual My Number Card) to the issuance flow showing
  the PIN keypad, through the kiosk's orchestrator (certificate read, validity,
  PIN tries). Baseline: the same APDUs with raw pyscard. pcscd's own polling
  (vpcd connect to its report) is printed separately: it is not ours.
* PIN confirmed -> PDF ready: from the PIN's OK to central's answer holding
  the rendered certificate PDF: a challenge from central's listener, VERIFY +
  signature on the card, the session (signature, chain, CRL, registry,
  eligibility), the order and its confirmation (issue number, PDF rendering),
  all over HTTPS with mutual TLS to a real ``python -m central issuance
  serve`` on SQLite. Baseline: the card's VERIFY + signature with raw
  pyscard plus four bare mutual-TLS round trips (GET /catalogue) -- what the
  same work costs with no verification, database or rendering. The two are
  measured alternately, round by round; the run fails (exit 1) when ours is
  above 1.5x raw at p50.

Starts its own pcscd (virtual reader), central listener and test PKI.
Figures go to ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import base64
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cardreader import MYNUMBER, PIN, _command, _wait_for, raw_flow, start_sim  # noqa: E402
from cardreader.service import CardService  # noqa: E402
from cardreader.sim.testpki import load_test_pki  # noqa: E402
from cardreader.watch import CardEvent, CardWatcher  # noqa: E402
from contracts.issuance import ConfirmIn, OrderIn, OrderItemIn  # noqa: E402
from kiosk.issuance.central import HttpsCentral  # noqa: E402
from kiosk.issuance.flow import IssuanceFlow  # noqa: E402
from kiosk.issuance.model import SessionStatus  # noqa: E402
from kiosk.issuance.orchestrator import Orchestrator, Ports  # noqa: E402
from kiosk.issuance.payment import SimulatedTerminal  # noqa: E402
from kiosk.issuance.printing import FilePrinter  # noqa: E402
from kiosk.issuance.sound import SimulatedSound  # noqa: E402
from tests.harness.cards import card_present  # noqa: E402
from tests.harness.issuance import RunningIssuance, start_issuance_listener  # noqa: E402
from tests.harness.pcscd import Pcscd  # noqa: E402
from tests.harness.services import wait_until  # noqa: E402

DEVICE = "bench-counter"
PIN_TO_PDF_TARGET = 1.5  # PIN confirmed -> PDF ready: at most 1.5x raw (p50)


class NoEvents:
    def append(self, type: str, data: object = None) -> None:
        pass


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered):7.1f} ms   p95 {p95:7.1f} ms   (n={len(ordered)})"


def start_central(tmp: Path) -> tuple[RunningIssuance, HttpsCentral]:
    listener = start_issuance_listener(tmp, DEVICE, env={"PYTHONPATH": str(ROOT)})
    return listener, listener.client()


def orchestrated_flow(client: HttpsCentral, tmp: Path) -> tuple[IssuanceFlow, Orchestrator]:
    """The kiosk's flow and orchestrator without Kivy: work runs on the
    caller's thread and results are handed back at once."""
    ports = Ports(cards=CardService(reader_filter=MYNUMBER), central=client,
                  payment=SimulatedTerminal(), printer=FilePrinter(tmp / "spool"),
                  sound=SimulatedSound(), events=NoEvents())  # fmt: skip
    orchestrator = Orchestrator(ports, DEVICE, post=lambda call: call())
    flow = IssuanceFlow(orchestrator.submit, ZoneInfo("Asia/Tokyo"))
    orchestrator.flow = flow
    return flow, orchestrator


def card_to_pin_screen(sim_cmd: subprocess.Popen[str], flow: IssuanceFlow, rounds: int
                       ) -> tuple[list[float], list[float]]:  # fmt: skip
    events: queue.Queue[CardEvent] = queue.Queue()
    ours, polling = [], []
    with CardWatcher(events, reader_filter=MYNUMBER):
        _wait_for(events, "inserted")
        for _ in range(rounds):
            _command(sim_cmd, "remove")
            _wait_for(events, "removed")
            flow.reset()
            flow.choose_language("ja", time.monotonic())
            start = time.monotonic()
            _command(sim_cmd, "insert")
            event = _wait_for(events, "inserted")
            flow.card_placed(event.at)
            assert flow.screen.name == "pin", flow.screen
            ours.append((time.monotonic() - event.at) * 1000)
            polling.append((event.at - start) * 1000)
    return ours, polling


def pin_to_pdf(orchestrator: Orchestrator, client: HttpsCentral, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.monotonic()
        result = orchestrator.open_session(PIN)
        assert result.status is SessionStatus.OPEN and result.session is not None, result
        order = client.create_order(OrderIn(
            session_id=result.session.session_id, idempotency_key=uuid.uuid4().hex,
            items=[OrderItemIn(kind="juminhyo", copies=1)],
        ))  # fmt: skip
        issued = client.confirm(order.order_id, ConfirmIn(payment_ref="bench"))
        pdf = base64.b64decode(issued.documents[0].pdf)
        times.append((time.monotonic() - start) * 1000)
        assert pdf.startswith(b"%PDF-")
        client.close_session(result.session.session_id)
    return times


def raw_pin_to_pdf(client: HttpsCentral, rounds: int, cert_len: int) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.monotonic()
        raw_flow(cert_len, auth=True)
        for _ in range(4):
            client.catalogue()
        times.append((time.monotonic() - start) * 1000)
    return times


def raw_card_read(rounds: int, cert_len: int) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.monotonic()
        raw_flow(cert_len, auth=False)
        times.append((time.monotonic() - start) * 1000)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        pcscd = Pcscd(tmp / "pcscd", apdu_log=False)
        pcscd.start()
        os.environ.update(pcscd.env)
        listener, client = start_central(tmp)
        pki_dir = listener.pki_dir
        sim = start_sim("--profile", "mynumber", "--pin", PIN, "--pki", str(pki_dir),
                        "--port", str(pcscd.ports[0]))  # fmt: skip
        try:
            wait_until(lambda: card_present(MYNUMBER), 10, "the card")
            flow, orchestrator = orchestrated_flow(client, tmp)
            cert_len = len(load_test_pki(pki_dir).users["valid"].der)
            print(f"pcscd + vpcd (card in its own process), central listener on SQLite; "
                  f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")  # fmt: skip
            ours, polling = card_to_pin_screen(sim, flow, args.rounds)
            raw_read = raw_card_read(args.rounds, cert_len)
            print("card placed -> PIN screen ready")
            print(f"  ours (watcher event -> PIN keypad)     {percentiles(ours)}")
            print(f"  raw pyscard (same APDUs)               {percentiles(raw_read)}")
            print(f"  pcscd polling (not ours)               {percentiles(polling)}")
            pdf, raw = [], []
            for _ in range(args.rounds):  # alternating, so load on the machine hits both
                pdf += pin_to_pdf(orchestrator, client, 1)
                raw += raw_pin_to_pdf(client, 1, cert_len)
            ratio = statistics.median(pdf) / statistics.median(raw)
            print("PIN confirmed -> PDF ready (card signature, central verification, order, PDF)")
            print(f"  ours                                   {percentiles(pdf)}")
            print(f"  raw (pyscard sign + 4 bare mTLS calls) {percentiles(raw)}")
            met = ratio <= PIN_TO_PDF_TARGET
            print(f"  ours / raw (p50) {ratio:.2f}x, target <= {PIN_TO_PDF_TARGET}x: "
                  + ("met" if met else "MISSED"))  # fmt: skip
        finally:
            sim.terminate()
            sim.wait(10)
            client.close()
            listener.stop()
            pcscd.stop()
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
