"""X.509 building blocks for the fleet PKI (``cryptography``).

A fleet CA signs the broker's server certificate, one client certificate per
device (CN = device id, used as the MQTT username by the broker) and the
central services' identities. Keys are EC P-256: small, fast on a Pi, and
supported by mosquitto's OpenSSL and Python's ssl module.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Issued:
    """A key and its certificate."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def write(self, cert_path: Path, key_path: Path) -> None:
        write_cert(self.cert, cert_path)
        write_key(self.key, key_path)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def create_ca(
    common_name: str, *, organisation: str = "City Kiosk Fleet", days: int = 3650
) -> Issued:
    key = new_key()
    name = _name(common_name, organisation)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(key, cert)


def issue(
    ca: Issued,
    common_name: str,
    *,
    server_names: list[str] | None = None,
    client: bool = True,
    organisation: str = "City Kiosk Fleet",
    days: int = 825,
    not_before: dt.datetime | None = None,
) -> Issued:
    """Issue a leaf certificate; ``server_names`` (DNS names or IPs) make it a server cert."""
    key = new_key()
    start = not_before or (_now() - dt.timedelta(minutes=5))
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organisation))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    if server_names:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(n) for n in server_names]), critical=False
        )
    builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return Issued(key, builder.sign(ca.key, hashes.SHA256()))


def _general_name(value: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        return x509.DNSName(value)


def write_cert(cert: x509.Certificate, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def write_key(key: ec.EllipticCurvePrivateKey, path: Path, mode: int = 0o600) -> None:
    """Write a private key readable by its owner only (created with that mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    path.chmod(mode)


def load_issued(cert_path: Path, key_path: Path) -> Issued:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path}: expected an EC private key")
    return Issued(key, cert)


def not_after(cert: x509.Certificate) -> dt.datetime:
    """The certificate's expiry as an aware UTC time (cryptography 38 on Debian 12 too)."""
    aware = getattr(cert, "not_valid_after_utc", None)
    if isinstance(aware, dt.datetime):
        return aware
    return cert.not_valid_after.replace(tzinfo=dt.UTC)


def common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """An ECDSA-SHA256 signature (DER) over ``data``."""
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def verify_signature(cert: x509.Certificate, data: bytes, signature: bytes) -> bool:
    """True when ``signature`` over ``data`` was made by ``cert``'s key."""
    public = cert.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        return False
    try:
        public.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """True when ``cert`` carries a valid signature of ``ca`` (EC fleet CAs only)."""
    public = ca.public_key()
    algorithm = cert.signature_hash_algorithm
    if not isinstance(public, ec.EllipticCurvePublicKey) or algorithm is None:
        return False
    if cert.issuer != ca.subject:
        return False
    try:
        public.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
    except InvalidSignature:
        return False
    return True


def same_key(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> bool:
    """True when ``key`` is the private half of ``cert``'s public key."""
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    pem = serialization.Encoding.PEM
    return key.public_key().public_bytes(pem, spki) == cert.public_key().public_bytes(pem, spki)


def build_crl(ca: Issued, revoked: dict[int, dt.datetime]) -> x509.CertificateRevocationList:
    """A CRL listing ``revoked`` (serial -> revocation time), valid as long as the CA.

    OpenSSL (mosquitto) rejects *every* client once a CRL's nextUpdate has
    passed, so the CRL lives as long as the CA; it is re-signed at each change.
    """
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(_now() - dt.timedelta(minutes=5))
        .next_update(not_after(ca.cert))
    )
    for serial, when in sorted(revoked.items()):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    return builder.sign(ca.key, hashes.SHA256())


def write_crl(crl: x509.CertificateRevocationList, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    tmp.replace(path)


def revoked_serials(path: Path) -> dict[int, dt.datetime]:
    """Serial -> revocation time of a CRL file (empty when the file does not exist)."""
    if not path.exists():
        return {}
    crl = x509.load_pem_x509_crl(path.read_bytes())
    result: dict[int, dt.datetime] = {}
    for entry in crl:
        when = getattr(entry, "revocation_date_utc", None)
        if not isinstance(when, dt.datetime):
            when = entry.revocation_date.replace(tzinfo=dt.UTC)
        result[entry.serial_number] = when
    return result
