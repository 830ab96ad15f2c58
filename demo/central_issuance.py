"""A ready central configuration and registry for the issuance demo and the
end-to-end tests: :func:`prepare`.

It uses the test JPKI (``python -m cardreader testpki DIR``; created when
absent) and an existing fleet folder (``python -m deploy fleet init``): the
fleet CA signs the device listener's server certificate and is the client
CA, with the fleet CRL (``python -m deploy listener-cert``); issuance admits
only counter-role device certificates.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from cardreader.sim.testpki import load_test_pki, write_extra_user, write_test_pki
from central.issuance.registry.sqlite import SqliteRegistry, seed_demo
from deploy.listener_cert import listener_files, write_listener_files

SERVER_NAMES = ["localhost", "127.0.0.1"]


@dataclass(frozen=True)
class DemoPaths:
    config: Path  # central.toml with [issuance] enabled
    registry: Path
    issuance_dir: Path  # server cert/key, fleet CA, JPKI root and CRL copies
    fleet_ca: Path  # what a kiosk trusts for the listener (server cert's CA)
    ineligible_cert: Path  # a test user linked to a 支援措置 resident (PEM)
    ineligible_key: Path
    port: int


def listener_config_text(issuance: Path, port: int) -> str:
    """The ``[devices.listener]`` part of a central config (the device
    listener's TLS files in ``issuance``, from ``python -m deploy listener-cert``)."""
    return listener_files(issuance).config_text("127.0.0.1", port)


def issuance_config_text(issuance: Path, port: int, always_open: bool) -> str:
    """The ``[issuance]`` part of a central config for the files in
    ``issuance``, with the device listener and card enrolment on it."""
    lines = [
        "[issuance]", "enabled = true",
        f'jpki_roots = ["{issuance / "jpki-root.pem"}"]',
        f'crl_files = ["{issuance / "jpki-crl.pem"}"]',
        f'registry_file = "{issuance / "registry.db"}"',
    ]  # fmt: skip
    if always_open:  # tests and demos at any hour
        lines += ["", "[issuance.hours]", 'opens = "00:00"', 'closes = "24:00"', "closed_days = []"]
    lines += ["", "[enrolment]", "enabled = true", ""]
    return "\n".join(lines) + "\n" + listener_config_text(issuance, port)


def prepare(
    state_dir: Path, fleet_dir: Path, pki_dir: Path, *, port: int = 8443, always_open: bool = True
) -> DemoPaths:
    """Write ``state_dir/central.toml``, the listener's TLS files and a seeded
    registry; idempotent (the registry keeps its residents)."""
    if not (pki_dir / "TEST-root-ca.pem").exists():
        write_test_pki(pki_dir)
    test_pki = load_test_pki(pki_dir)
    issuance = state_dir / "issuance"
    issuance.mkdir(parents=True, exist_ok=True)
    write_listener_files(fleet_dir, issuance, SERVER_NAMES, common_name="central-issuance")
    pem = serialization.Encoding.PEM
    (issuance / "jpki-root.pem").write_bytes(test_pki.root.cert.public_bytes(pem))
    shutil.copyfile(pki_dir / "TEST-crl.pem", issuance / "jpki-crl.pem")
    ineligible = write_extra_user(pki_dir, "ineligible")
    cert_path = pki_dir / "users" / "TEST-user-ineligible.cert.pem"
    key_path = cert_path.with_name("TEST-user-ineligible.key.pem")
    registry = SqliteRegistry(issuance / "registry.db")
    try:
        seed_demo(registry, test_pki.users["valid"].cert, ineligible)
    finally:
        registry.close()
    config = state_dir / "central.toml"
    config.write_text(
        "# Written by demo.central_issuance.prepare: TEST material only.\n"
        f'[database]\nurl = "sqlite:///{state_dir / "central.db"}"\n\n'
        + issuance_config_text(issuance, port, always_open)
    )
    return DemoPaths(config, issuance / "registry.db", issuance, issuance / "fleet-ca.pem",
                     cert_path, key_path, port)  # fmt: skip
