"""Verifying a My Number Card's proof of possession.

Steps, each refused with a contract code (:class:`IssuanceRefused`):

1. the certificate parses, and a configured JPKI user-authentication root
   issued it (subject = issuer, the root's signature verifies, the root is
   within its validity) -> else ``certificate_untrusted``;
2. it allows ``digitalSignature`` -> else ``certificate_untrusted``;
3. it is within its validity now -> else ``certificate_expired``;
4. the signature is RSA PKCS#1 v1.5 SHA-256 over ``signed_message`` with the
   certificate's key -> else ``signature_invalid``;
5. it is not revoked, asked of a :class:`RevocationChecker` (CRL files here;
   an OCSP client plugs in the same way) -> ``certificate_revoked``, or
   ``revocation_unavailable`` when the answer cannot be had (fail closed).

The signature is checked before revocation: a revocation lookup can cost a
fee per query at J-LIS and must not be spent on a forged request.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from central.errors import CentralConfigError, IssuanceRefused
from contracts.jpki import verify_signature

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerifiedCertificate:
    """What the registry needs to find the resident: never personal data."""

    issuer: str  # RFC 4514
    serial: str  # lower-case hex
    fingerprint: str  # SHA-256 of the DER, hex


class RevocationChecker(Protocol):
    """Says whether a certificate is revoked: returns when it is not, raises
    ``IssuanceRefused("certificate_revoked")`` when it is and
    ``IssuanceRefused("revocation_unavailable")`` when it cannot tell.

    An OCSP implementation (J-LIS for registered verifiers) asks the
    responder named in the certificate's AIA with ``issuer`` and applies the
    same three outcomes."""

    def check(self, cert: x509.Certificate, issuer: x509.Certificate, now: datetime) -> None: ...


class CrlRevocationChecker:
    """CRL files on disk, looked at on each check (an updated file counts at once).

    The CRL of the certificate's issuer must be signed by it and current
    (``next_update`` in the future); none, unreadable or expired means
    ``revocation_unavailable``. A file is parsed, and its signature checked,
    again only when it changed (its size, times or inode): the same CRL
    serves every resident, and parsing and verifying it was a tenth of a
    session's work."""

    def __init__(self, files: Sequence[Path]) -> None:
        self.files = list(files)
        self._parsed: dict[Path, tuple[tuple[int, ...], _Crl | None]] = {}

    def _crls(self) -> list[_Crl]:
        crls = []
        for path in self.files:
            try:
                info = path.stat()
            except OSError as exc:
                _unreadable(path, exc)
                continue
            state = (info.st_mtime_ns, info.st_ctime_ns, info.st_size, info.st_ino)
            known = self._parsed.get(path)
            if known is None or known[0] != state:
                known = self._parsed[path] = (state, _read_crl(path))
            if known[1] is not None:
                crls.append(known[1])
        return crls

    def check(self, cert: x509.Certificate, issuer: x509.Certificate, now: datetime) -> None:
        current = None
        for crl in self._crls():
            if crl.value.issuer != issuer.subject or not crl.signed_by(issuer):
                continue
            next_update = crl.value.next_update_utc
            if next_update is None or next_update < now or crl.value.last_update_utc > now:
                log.warning("crl out of date", extra={"next_update": str(next_update)})
                continue
            current = crl.value
        if current is None:
            raise IssuanceRefused("revocation_unavailable", "no current CRL for the issuer")
        if current.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
            raise IssuanceRefused("certificate_revoked", "the certificate is revoked")


class _Crl:
    """A parsed CRL file and whom its signature was checked against."""

    def __init__(self, value: x509.CertificateRevocationList) -> None:
        self.value = value
        self._signed_by: dict[x509.Certificate, bool] = {}

    def signed_by(self, issuer: x509.Certificate) -> bool:
        if issuer not in self._signed_by:
            self._signed_by[issuer] = _crl_signed_by(self.value, issuer)
        return self._signed_by[issuer]


def _read_crl(path: Path) -> _Crl | None:
    try:
        raw = path.read_bytes()
        if raw.lstrip().startswith(b"-----"):
            return _Crl(x509.load_pem_x509_crl(raw))
        return _Crl(x509.load_der_x509_crl(raw))
    except (OSError, ValueError) as exc:
        _unreadable(path, exc)
        return None


def _unreadable(path: Path, exc: Exception) -> None:
    log.warning("crl unreadable", extra={"file": str(path), "error": type(exc).__name__})


def _crl_signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    public = issuer.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        return False
    return crl.is_signature_valid(public)


def load_roots(
    paths: Sequence[Path], source: str = "issuance.jpki_roots"
) -> list[x509.Certificate]:
    """The trust anchors (PEM, one or more certificates per file)."""
    roots: list[x509.Certificate] = []
    for path in paths:
        try:
            roots.extend(x509.load_pem_x509_certificates(path.read_bytes()))
        except (OSError, ValueError) as exc:
            raise CentralConfigError(source, [f"{path}: cannot be read as PEM ({exc})"]) from None
    return roots


class CardVerifier:
    """Steps 1-5 of the module docstring against fixed roots and a checker."""

    def __init__(self, roots: Sequence[x509.Certificate], revocation: RevocationChecker) -> None:
        self.roots = list(roots)
        self.revocation = revocation

    def verify(
        self, der: bytes, message: bytes, signature: bytes, now: datetime
    ) -> VerifiedCertificate:
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            raise IssuanceRefused(
                "certificate_untrusted", "the certificate cannot be parsed"
            ) from None
        root = self._issuer(cert, now)
        _check_key_usage(cert)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise IssuanceRefused("certificate_expired", "the certificate is out of its validity")
        if not verify_signature(der, message, signature):
            raise IssuanceRefused("signature_invalid", "the signature does not verify")
        self.revocation.check(cert, root, now)
        return VerifiedCertificate(
            issuer=cert.issuer.rfc4514_string(),
            serial=f"{cert.serial_number:x}",
            fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
        )

    def _issuer(self, cert: x509.Certificate, now: datetime) -> x509.Certificate:
        for root in self.roots:
            if root.subject != cert.issuer:
                continue
            if not root.not_valid_before_utc <= now <= root.not_valid_after_utc:
                continue
            try:
                cert.verify_directly_issued_by(root)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return root
        raise IssuanceRefused("certificate_untrusted", "not issued by a configured JPKI root")


def _check_key_usage(cert: x509.Certificate) -> None:
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise IssuanceRefused("certificate_untrusted", "the certificate has no key usage") from None
    if not usage.digital_signature:
        raise IssuanceRefused("certificate_untrusted", "the key is not for signatures")
