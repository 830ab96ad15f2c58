"""Certificate facts the kiosk needs: validity, issuer, serial, fingerprint.

The JPKI user-authentication certificate carries no personal data (its CN is
an opaque string); the signing certificate, which does, is never read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from cardreader.errors import (
    CertificateError,
    CertificateExpiredError,
    CertificateRevokedError,
)
from contracts.jpki import verify_signature

__all__ = [
    "CertificateInfo",
    "check_not_revoked",
    "check_valid",
    "describe",
    "load_der",
    "verify_signature",  # the shared check, re-exported for the card layer's callers
]


@dataclass(frozen=True)
class CertificateInfo:
    subject: str
    issuer: str
    serial: str  # hex
    not_before: dt.datetime
    not_after: dt.datetime
    fingerprint: bytes  # SHA-256 of the DER
    expired: bool

    def to_json(self) -> dict[str, object]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "serial": self.serial,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "expired": self.expired,
        }


def load_der(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise CertificateError(f"the card's certificate cannot be parsed: {exc}") from exc


def describe(der: bytes, now: dt.datetime | None = None) -> CertificateInfo:
    cert = load_der(der)
    when = now or dt.datetime.now(dt.UTC)
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial=f"{cert.serial_number:x}",
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        fingerprint=cert.fingerprint(hashes.SHA256()),
        expired=not cert.not_valid_before_utc <= when <= cert.not_valid_after_utc,
    )


def check_valid(info: CertificateInfo) -> None:
    """Raise :class:`CertificateExpiredError` for a certificate out of its validity."""
    if info.expired:
        raise CertificateExpiredError(info.not_after.date().isoformat())


def check_not_revoked(der: bytes, crl_pem_or_der: bytes) -> None:
    """Raise :class:`CertificateRevokedError` if the CRL lists the certificate."""
    cert = load_der(der)
    try:
        if crl_pem_or_der.lstrip().startswith(b"-----"):
            crl = x509.load_pem_x509_crl(crl_pem_or_der)
        else:
            crl = x509.load_der_x509_crl(crl_pem_or_der)
    except ValueError as exc:
        raise CertificateError(f"the revocation list cannot be parsed: {exc}") from exc
    if crl.issuer != cert.issuer:
        raise CertificateError("the revocation list is from another issuer")
    if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
        raise CertificateRevokedError()
