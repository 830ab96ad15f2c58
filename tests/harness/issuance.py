"""Test material for the central issuance service: a test JPKI (root, CRL,
users; one more root for "untrusted"), card-like signatures, settings and a
service over a given database with a fixed clock."""

from __future__ import annotations

import functools
import signal
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from cardreader.sim.testpki import (
    KeyPair,
    TestPki,
    create_root,
    create_test_pki,
    issue_user,
    write_extra_user,
    write_test_pki,
)
from central.db.engine import Database
from central.issuance.config import HoursSection, IssuanceSection
from central.issuance.jpki_verify import CardVerifier, CrlRevocationChecker, load_roots
from central.issuance.orders import OrderDesk
from central.issuance.registry.sqlite import (
    SqliteRegistry,
    certificate_key,
    seed_demo,
    synthetic_ref,
)
from central.issuance.service import Clock, IssuanceService
from contracts.issuance import ChallengeOut, SessionIn, signed_message
from demo.central_issuance import DemoPaths, prepare
from deploy.fleet import add_device, init_fleet
from kiosk.issuance.central import HttpsCentral
from tests.harness.services import ServiceProcess, free_port, port_open, wait_until

JST = ZoneInfo("Asia/Tokyo")
ALWAYS_OPEN = HoursSection(opens="00:00", closes="24:00", closed_days=[])


@dataclass(frozen=True)
class IssuancePki:
    pki: TestPki
    ineligible: KeyPair  # issued by the test root, linked to a 支援措置 resident
    unknown: KeyPair  # issued by the test root, linked to nobody
    stranger: KeyPair  # issued by another root

    def user(self, variant: str) -> KeyPair:
        return self.pki.users[variant]


@functools.cache
def issuance_pki() -> IssuancePki:
    """One per test process: RSA key generation is slow."""
    pki = create_test_pki()
    other_root = create_root()
    return IssuancePki(pki, issue_user(pki.root), issue_user(pki.root), issue_user(other_root))


def weekday_at(hour: int, minute: int = 0, weekday: int = 2) -> datetime:
    """A fixed local time within the test certificates' validity and the
    CRL's: the next given weekday (Wednesday) at least 2 days ahead, never in
    the New Year break."""
    day = (datetime.now(JST) + timedelta(days=2)).date()
    while (
        day.weekday() != weekday
        or (day.month, day.day) >= (12, 28)
        or (day.month == 1 and day.day <= 4)
    ):
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=JST)


def sign(user: KeyPair, challenge_hex: str, device: str) -> str:
    """What the card does: RSA PKCS#1 v1.5 SHA-256 over the signed message."""
    message = signed_message(bytes.fromhex(challenge_hex), device)
    return user.key.sign(message, padding.PKCS1v15(), hashes.SHA256()).hex()


def session_in(user: KeyPair, challenge: ChallengeOut, device: str) -> SessionIn:
    der = user.cert.public_bytes(serialization.Encoding.DER).hex()
    return SessionIn(challenge_id=challenge.challenge_id, certificate=der,
                     signature=sign(user, challenge.challenge, device))  # fmt: skip


def write_trust(directory: Path, material: IssuancePki) -> tuple[Path, Path]:
    """The root and CRL as the configuration names them."""
    directory.mkdir(parents=True, exist_ok=True)
    root, crl = directory / "jpki-root.pem", directory / "jpki-crl.pem"
    root.write_bytes(material.pki.root.cert.public_bytes(serialization.Encoding.PEM))
    crl.write_bytes(material.pki.crl.public_bytes(serialization.Encoding.PEM))
    return root, crl


def settings_for(directory: Path, **overrides: Any) -> IssuanceSection:
    """Issuance settings with the test trust material and registry in ``directory``."""
    material = issuance_pki()
    root, crl = write_trust(directory, material)
    values: dict[str, Any] = {"enabled": True, "jpki_roots": [root], "crl_files": [crl],
                              "registry_file": directory / "registry.db", **overrides}  # fmt: skip
    return IssuanceSection(**values)


def seeded_registry(settings: IssuanceSection) -> SqliteRegistry:
    material = issuance_pki()
    registry = SqliteRegistry(settings.registry_file, min_age=settings.min_age)
    seed_demo(registry, material.user("valid").cert, material.ineligible.cert)
    for variant in ("expired", "revoked"):  # linked, so only the certificate refuses them
        seed_demo_link(registry, material.user(variant))
    return registry


def seed_demo_link(registry: SqliteRegistry, user: KeyPair) -> None:
    registry.link(synthetic_ref("demo-valid"), certificate_key(user.cert))


class MovableClock:
    """A fixed clock tests move by hand."""

    def __init__(self, start: datetime) -> None:
        self.moment = start.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


def build(
    db: Database, settings: IssuanceSection, registry: SqliteRegistry, clock: Clock
) -> tuple[IssuanceService, OrderDesk]:
    verifier = CardVerifier(
        load_roots(settings.jpki_roots), CrlRevocationChecker(settings.crl_files)
    )
    service = IssuanceService(db, settings, verifier, registry, clock)
    return service, OrderDesk(service)


@dataclass
class RunningIssuance:
    """``python -m central issuance serve`` with a fleet, a device identity and
    the test JPKI (see :func:`start_issuance_listener`)."""

    process: ServiceProcess
    paths: DemoPaths
    device_dir: Path  # device.pem / device.key of the counter
    pki_dir: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.paths.port}"

    def client(self) -> HttpsCentral:
        """The counter's HTTPS client with its fleet certificate."""
        return HttpsCentral(self.url, ca_file=self.paths.fleet_ca,
                            cert_file=self.device_dir / "device.pem",
                            key_file=self.device_dir / "device.key")  # fmt: skip

    def stop(self) -> None:
        self.process.signal(signal.SIGCONT)  # in case a scenario left it stopped
        self.process.stop()


def start_issuance_listener(
    root: Path, device: str, *, always_open: bool = True, env: dict[str, str] | None = None
) -> RunningIssuance:
    """A fleet with ``device``, the test JPKI (plus an ``unknown`` user linked
    to nobody), the reference registry and the listener on a free port;
    ``always_open=False`` closes the service all day."""
    fleet, pki_dir = root / "fleet", root / "pki"
    init_fleet(fleet, broker_host="127.0.0.1")
    device_dir = add_device(fleet, device, "city-hall", role="counter")
    write_test_pki(pki_dir)
    write_extra_user(pki_dir, "unknown")
    paths = prepare(root / "central", fleet, pki_dir, port=free_port(), always_open=always_open)
    if not always_open:
        text = paths.config.read_text() + '\n[issuance.hours]\nopens = "00:00"\ncloses = "00:01"\n'
        paths.config.write_text(text.replace("closed_days", "# closed_days"))
    process = ServiceProcess(
        "central-issuance",
        [sys.executable, "-m", "central", "issuance", "serve", "--config", str(paths.config)],
        root / "central.log",
        env=env,
    )
    process.start()
    wait_until(lambda: process.check_alive() and port_open(paths.port), 30, "the listener")
    return RunningIssuance(process, paths, device_dir, pki_dir)
