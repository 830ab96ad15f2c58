"""Fakes for the issuance flow and orchestrator tests: a My Number Card with
a real key (signatures verify at the fake central), printers that fail."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from cardreader import certs, jpki
from cardreader.errors import CardRemovedError, PinBlockedError, WrongPinError
from cardreader.identify import CardKind
from cardreader.service import AuthOutcome, CardInfo
from foundation.privacy import check_event_data
from kiosk.issuance.flow import IssuanceFlow, IssuanceStep
from kiosk.issuance.model import Request
from kiosk.issuance.orchestrator import Orchestrator, Ports
from kiosk.issuance.payment import SimulatedTerminal
from kiosk.issuance.printing import FilePrinter, JobState
from kiosk.issuance.sound import SimulatedSound
from tests.harness.fake_issuance_central import FakeCentral

DEVICE = "counter-01"
TOKYO = ZoneInfo("Asia/Tokyo")
_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def certificate(expired: bool = False) -> bytes:
    now = dt.datetime.now(dt.UTC)
    end = now - dt.timedelta(days=1) if expired else now + dt.timedelta(days=365)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "OPAQUE123")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(_KEY.public_key()).serial_number(7)
        .not_valid_before(now - dt.timedelta(days=400)).not_valid_after(end)
        .sign(_KEY, hashes.SHA256())
    )  # fmt: skip
    return cert.public_bytes(serialization.Encoding.DER)


@dataclass
class FakeCard:
    pin: str = "1234"
    tries: int = 3
    kind: CardKind = CardKind.MYNUMBER
    expired: bool = False
    present: bool = True
    auth_calls: int = 0

    def info(self, reader: str | None = None) -> CardInfo:
        if not self.present:
            raise CardRemovedError("r")
        if self.kind is not CardKind.MYNUMBER:
            return CardInfo("r", self.kind, "ref")
        info = certs.describe(certificate(self.expired))
        return CardInfo("r", self.kind, "ref", info, self.tries)

    def authenticate(self, pin: str, challenge: bytes, reader: str | None = None) -> AuthOutcome:
        self.auth_calls += 1
        if not self.present:
            raise CardRemovedError("r")
        if self.tries == 0:
            raise PinBlockedError()
        if pin != self.pin:
            self.tries -= 1
            raise WrongPinError(self.tries) if self.tries else PinBlockedError()
        self.tries = 3
        der = certificate(self.expired)
        signature = _KEY.sign(challenge, padding.PKCS1v15(), hashes.SHA256())
        result = jpki.AuthResult(der, certs.describe(der), challenge, signature, 5)
        return AuthOutcome("r", "ref", result)


@dataclass
class JammingPrinter(FilePrinter):
    """Jams after ``good_jobs`` documents (while printing, after payment)."""

    good_jobs: int = 0

    def job_state(self, job_id: str) -> JobState:
        if int(job_id.split("-")[1]) > self.good_jobs:
            return JobState.FAILED
        return super().job_state(job_id)


@dataclass
class EventList:
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def append(self, type: str, data: Any = None) -> None:
        check_event_data(data)
        self.events.append((type, dict(data)))

    def types(self) -> list[str]:
        return [t for t, _ in self.events]

    def of(self, type_: str) -> list[dict[str, Any]]:
        return [d for t, d in self.events if t == type_]


@dataclass
class Rig:
    flow: IssuanceFlow
    orchestrator: Orchestrator
    card: FakeCard
    central: FakeCentral
    payment: SimulatedTerminal
    printer: FilePrinter
    sound: SimulatedSound
    events: EventList
    deferred: list[Request] = field(default_factory=list)
    now: float = 1000.0

    def at(self, seconds: float = 1.0) -> float:
        self.now += seconds
        return self.now

    def step(self) -> IssuanceStep:
        """The flow's step, read through a call: mypy would otherwise keep an
        asserted step narrowed across the actions that change it."""
        return self.flow.screen.name

    def run_deferred(self) -> None:
        while self.deferred:
            self.orchestrator.handle(self.deferred.pop(0))

    def to_pin(self) -> None:
        self.flow.start(self.at())
        self.flow.choose_language("en", self.at())
        self.flow.card_placed(self.at())
        self.run_deferred()

    def type_pin(self, pin: str) -> None:
        for digit in pin:
            self.flow.key(digit, self.at())
        self.flow.key("ok", self.at())
        self.run_deferred()


def make_rig(tmp_path: Path, *, deferred: bool = False, printer: FilePrinter | None = None,
             card: FakeCard | None = None) -> Rig:  # fmt: skip
    central = FakeCentral(DEVICE)
    events = EventList()
    ports = Ports(
        cards=card or FakeCard(), central=central, payment=SimulatedTerminal(),
        printer=printer or FilePrinter(tmp_path / "spool"), sound=SimulatedSound(), events=events,
    )  # fmt: skip
    orchestrator = Orchestrator(ports, DEVICE, post=lambda call: call(), job_poll_seconds=0.01,
                                print_timeout_seconds=0.05)  # fmt: skip
    queue: list[Request] = []
    submit: Callable[[Request], None] = orchestrator.submit
    if deferred:

        def submit(request: Request) -> None:
            if type(request).__name__ in ("Alert", "Record"):
                orchestrator.submit(request)
            else:
                queue.append(request)

    flow = IssuanceFlow(submit, TOKYO)
    orchestrator.flow = flow
    return Rig(flow, orchestrator, ports.cards, central, ports.payment, ports.printer,  # type: ignore[arg-type]
               ports.sound, events, queue)  # type: ignore[arg-type]  # fmt: skip
