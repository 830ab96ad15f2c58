"""One X.509 builder over ``cryptography``: keys, names, CA and leaf
certificates, CRLs, and PEM files.

It knows nothing of fleets or JPKI: the fleet PKI (``deploy.pki``) and the
virtual card's test PKI (``cardreader.sim.testpki``) say which names,
usages and lifetimes they want and build them here.

It runs on Debian 12's cryptography 38 as well as on current releases, so it
uses nothing newer (no ``*_utc`` properties without a fallback).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, overload

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
K = TypeVar("K", bound=PrivateKey)

# Certificates and CRLs start a little in the past so that a peer whose clock
# is slightly behind does not reject them as "not yet valid".
CLOCK_SKEW = dt.timedelta(minutes=5)


def ec_key() -> ec.EllipticCurvePrivateKey:
    """A new EC P-256 key (small and fast on a Pi; fine for OpenSSL and ``ssl``)."""
    return ec.generate_private_key(ec.SECP256R1())


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A new RSA key with the usual public exponent 65537."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@dataclass(frozen=True)
class KeyPair(Generic[K]):
    """A private key and its certificate."""

    key: K
    cert: x509.Certificate

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    def write(self, cert_path: Path, key_path: Path) -> None:
        write_cert(self.cert, cert_path)
        write_key(self.key, key_path)


def name(
    *,
    country: str | None = None,
    organisation: str | None = None,
    units: Sequence[str] = (),
    common_name: str | None = None,
) -> x509.Name:
    """A distinguished name in the conventional order C, O, OU..., CN (absent parts left out)."""
    parts: list[tuple[x509.ObjectIdentifier, str]] = []
    if country is not None:
        parts.append((NameOID.COUNTRY_NAME, country))
    if organisation is not None:
        parts.append((NameOID.ORGANIZATION_NAME, organisation))
    parts.extend((NameOID.ORGANIZATIONAL_UNIT_NAME, unit) for unit in units)
    if common_name is not None:
        parts.append((NameOID.COMMON_NAME, common_name))
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in parts])


def common_name(cert: x509.Certificate) -> str:
    """The subject's CN ("" when it has none)."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


@dataclass(frozen=True)
class Validity:
    """When a certificate is valid (aware UTC times)."""

    not_before: dt.datetime
    not_after: dt.datetime

    @classmethod
    def lasting(cls, days: float, *, start: dt.datetime | None = None) -> Validity:
        """``days`` from ``start`` (default: now, less :data:`CLOCK_SKEW`)."""
        begin = start if start is not None else now() - CLOCK_SKEW
        return cls(begin, begin + dt.timedelta(days=days))

    @classmethod
    def ended(cls, ago: dt.timedelta, *, lasted: dt.timedelta) -> Validity:
        """A window that closed ``ago`` before now after lasting ``lasted``: already expired."""
        end = now() - ago
        return cls(end - lasted, end)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def key_usage(
    *,
    digital_signature: bool = False,
    content_commitment: bool = False,
    key_encipherment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    """A KeyUsage extension naming only the usages asked for."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def create_ca(
    key: K,
    subject: x509.Name,
    validity: Validity,
    *,
    usage: x509.KeyUsage | None = None,
    key_identifier: bool = True,
) -> KeyPair[K]:
    """A self-signed CA (path length 0: it signs leaves only).

    ``usage`` defaults to signing certificates and CRLs; ``key_identifier``
    adds a SubjectKeyIdentifier.
    """
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity.not_before)
        .not_valid_after(validity.not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage or key_usage(key_cert_sign=True, crl_sign=True), critical=True)
    )
    if key_identifier:
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
    return KeyPair(key, builder.sign(key, hashes.SHA256()))


def issue(
    issuer: KeyPair[Any],
    key: K,
    subject: x509.Name,
    validity: Validity,
    *,
    serial: int | None = None,
    usage: x509.KeyUsage | None = None,
    extended_usage: Sequence[x509.ObjectIdentifier] | None = None,
    alt_names: Sequence[str] = (),
    end_entity: bool = True,
) -> KeyPair[K]:
    """A leaf certificate for ``key`` signed by ``issuer``.

    ``serial`` defaults to a random one. ``usage`` (critical),
    ``extended_usage`` and ``alt_names`` (DNS names or IP addresses) are
    added only when given; ``end_entity`` adds a critical
    ``BasicConstraints(ca=False)``. An AuthorityKeyIdentifier always names
    the issuer's key.
    """
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(validity.not_before)
        .not_valid_after(validity.not_after)
    )
    if end_entity:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=False, path_length=None), critical=True
        )
    if usage is not None:
        builder = builder.add_extension(usage, critical=True)
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
        critical=False,
    )
    if alt_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(n) for n in alt_names]), critical=False
        )
    if extended_usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(extended_usage), critical=False)
    return KeyPair(key, builder.sign(issuer.key, hashes.SHA256()))


def _general_name(value: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        return x509.DNSName(value)


def not_after(cert: x509.Certificate) -> dt.datetime:
    """The certificate's expiry as an aware UTC time (cryptography 38 on Debian 12 too)."""
    aware = getattr(cert, "not_valid_after_utc", None)
    if isinstance(aware, dt.datetime):
        return aware
    return cert.not_valid_after.replace(tzinfo=dt.UTC)


def build_crl(
    issuer: KeyPair[Any],
    revoked: Iterable[tuple[int, dt.datetime]],
    *,
    next_update: dt.datetime,
    last_update: dt.datetime | None = None,
) -> x509.CertificateRevocationList:
    """A CRL by ``issuer`` listing ``revoked`` (serial, revoked-at) in the order given.

    ``last_update`` defaults to now, less :data:`CLOCK_SKEW`.
    """
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(last_update if last_update is not None else now() - CLOCK_SKEW)
        .next_update(next_update)
    )
    for serial, when in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    return builder.sign(issuer.key, hashes.SHA256())


def revocations(crl: x509.CertificateRevocationList) -> dict[int, dt.datetime]:
    """Serial -> revocation time (aware UTC) of every entry of ``crl``."""
    result: dict[int, dt.datetime] = {}
    for entry in crl:
        when = getattr(entry, "revocation_date_utc", None)
        if not isinstance(when, dt.datetime):
            when = entry.revocation_date.replace(tzinfo=dt.UTC)
        result[entry.serial_number] = when
    return result


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: PrivateKey) -> bytes:
    """PKCS#8, unencrypted: the files are protected by their mode instead."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_cert(cert: x509.Certificate, path: Path) -> None:
    _write_atomically(path, cert_pem(cert))


def write_key(key: PrivateKey, path: Path, mode: int = 0o600) -> None:
    """Write a private key readable by its owner only (it never exists with a wider mode)."""
    _write_atomically(path, key_pem(key), mode)


def write_crl(crl: x509.CertificateRevocationList, path: Path) -> None:
    _write_atomically(path, crl.public_bytes(serialization.Encoding.PEM))


def _write_atomically(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` beside ``path`` and rename it into place, so a reader
    (mosquitto reloading its CRL, a kiosk reading its key) never sees half a
    file. ``mode`` None leaves the permissions to the umask, like any file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666 if mode is None else mode)
    with os.fdopen(fd, "wb") as out:
        if mode is not None:
            # A stale temporary file keeps its old mode despite os.open's.
            os.fchmod(out.fileno(), mode)
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@overload
def load_key(path: Path, kind: Literal["ec"]) -> ec.EllipticCurvePrivateKey: ...
@overload
def load_key(path: Path, kind: Literal["rsa"]) -> rsa.RSAPrivateKey: ...
def load_key(path: Path, kind: Literal["ec", "rsa"]) -> PrivateKey:
    """The unencrypted private key in ``path``; ValueError unless it is of ``kind``."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if kind == "ec" and isinstance(key, ec.EllipticCurvePrivateKey):
        return key
    if kind == "rsa" and isinstance(key, rsa.RSAPrivateKey):
        return key
    raise ValueError(f"{path}: expected an {kind.upper()} private key")


def load_crl(path: Path) -> x509.CertificateRevocationList:
    return x509.load_pem_x509_crl(path.read_bytes())
