"""The card verification steps (central/issuance/jpki_verify.py) with the test JPKI."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from cardreader.sim.testpki import KeyPair
from central.errors import CentralConfigError, IssuanceRefused
from central.issuance.jpki_verify import CardVerifier, CrlRevocationChecker, load_roots
from contracts.issuance import signed_message
from tests.harness.issuance import issuance_pki, sign, write_trust

CHALLENGE = bytes(range(32))
# A day ahead of import time: the cached test PKI (its CRL starts 5 minutes
# before it is made) may be made minutes after collection in a long run.
NOW = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)


def verifier(tmp_path: Path, crl: Path | None = None) -> CardVerifier:
    root, default_crl = write_trust(tmp_path, issuance_pki())
    return CardVerifier(load_roots([root]), CrlRevocationChecker([crl or default_crl]))


def attempt(v: CardVerifier, user: KeyPair, device: str = "kiosk-1", signed_for: str = "") -> str:
    """The refusal code, or "ok"."""
    der = user.cert.public_bytes(serialization.Encoding.DER)
    signature = bytes.fromhex(sign(user, CHALLENGE.hex(), signed_for or device))
    try:
        v.verify(der, signed_message(CHALLENGE, device), signature, NOW)
    except IssuanceRefused as exc:
        return exc.code
    return "ok"


def test_verify_good_signature_gives_the_certificate_key(tmp_path: Path) -> None:
    user = issuance_pki().user("valid")
    der = user.cert.public_bytes(serialization.Encoding.DER)
    signature = bytes.fromhex(sign(user, CHALLENGE.hex(), "kiosk-1"))
    verified = verifier(tmp_path).verify(der, signed_message(CHALLENGE, "kiosk-1"), signature, NOW)
    assert verified.serial == f"{user.cert.serial_number:x}"
    assert verified.fingerprint == user.cert.fingerprint(hashes.SHA256()).hex()
    assert verified.issuer == user.cert.issuer.rfc4514_string()


def test_verify_refusals_map_to_contract_codes(tmp_path: Path) -> None:
    material, v = issuance_pki(), verifier(tmp_path)
    assert attempt(v, material.user("valid")) == "ok"
    assert attempt(v, material.user("valid"), signed_for="kiosk-2") == "signature_invalid"
    assert attempt(v, material.stranger) == "certificate_untrusted"
    assert attempt(v, material.user("expired")) == "certificate_expired"
    assert attempt(v, material.user("revoked")) == "certificate_revoked"


def test_verify_wrong_signature_refused(tmp_path: Path) -> None:
    user = issuance_pki().user("valid")
    der = user.cert.public_bytes(serialization.Encoding.DER)
    other = bytes.fromhex(sign(user, bytes(32).hex(), "kiosk-1"))  # another challenge
    with pytest.raises(IssuanceRefused) as err:
        verifier(tmp_path).verify(der, signed_message(CHALLENGE, "kiosk-1"), other, NOW)
    assert err.value.code == "signature_invalid"
    with pytest.raises(IssuanceRefused) as err:
        verifier(tmp_path).verify(b"not a certificate", b"", b"", NOW)
    assert err.value.code == "certificate_untrusted"


def _crl(
    next_update: dt.datetime, issuer: KeyPair, revoked: x509.Certificate | None = None
) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(next_update - dt.timedelta(days=30))
        .next_update(next_update)
    )
    if revoked is not None:
        entry = x509.RevokedCertificateBuilder().serial_number(revoked.serial_number)
        builder = builder.add_revoked_certificate(entry.revocation_date(NOW).build())
    crl = builder.sign(issuer.key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.PEM)


def test_verify_fails_closed_without_a_current_crl(tmp_path: Path) -> None:
    material = issuance_pki()
    expired = tmp_path / "expired-crl.pem"
    expired.write_bytes(_crl(NOW - dt.timedelta(hours=1), material.pki.root))
    assert attempt(verifier(tmp_path, expired), material.user("valid")) == "revocation_unavailable"
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN X509 CRL-----\nnot base64\n-----END X509 CRL-----\n")
    assert attempt(verifier(tmp_path, garbage), material.user("valid")) == "revocation_unavailable"
    missing = tmp_path / "missing.pem"
    assert attempt(verifier(tmp_path, missing), material.user("valid")) == "revocation_unavailable"


def test_verify_ignores_a_crl_not_signed_by_the_issuer(tmp_path: Path) -> None:
    material = issuance_pki()
    forged = tmp_path / "forged.pem"  # the root's name, another key: lists nothing
    impostor = KeyPair(material.stranger.key, material.pki.root.cert)
    forged.write_bytes(_crl(NOW + dt.timedelta(days=1), impostor))
    assert attempt(verifier(tmp_path, forged), material.user("revoked")) == "revocation_unavailable"


def test_load_roots_names_an_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(CentralConfigError) as err:
        load_roots([tmp_path / "nope.pem"])
    assert "nope.pem" in str(err.value)


def test_verify_sees_a_changed_crl_file_at_the_next_check(tmp_path: Path) -> None:
    material = issuance_pki()
    user, root = material.user("valid"), material.pki.root
    crl = tmp_path / "crl.pem"
    crl.write_bytes(_crl(NOW + dt.timedelta(days=1), root))
    v = verifier(tmp_path, crl)
    assert attempt(v, user) == "ok"
    assert attempt(v, user) == "ok"  # the parsed file again
    crl.write_bytes(_crl(NOW + dt.timedelta(days=1), root, revoked=user.cert))
    assert attempt(v, user) == "certificate_revoked"
    crl.write_bytes(b"-----BEGIN X509 CRL-----\nnot base64\n-----END X509 CRL-----\n")
    assert attempt(v, user) == "revocation_unavailable"
