"""The fleet PKI, built with :mod:`foundation.x509`.

A fleet CA signs the broker's server certificate, one client certificate per
device (CN = device id, used as the MQTT username by the broker) and the
central services' identities. Keys are EC P-256: small, fast on a Pi, and
supported by mosquitto's OpenSSL and Python's ssl module.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from foundation import x509 as builder
from foundation.x509 import common_name, not_after, write_cert, write_crl, write_key

__all__ = [
    "Issued",
    "build_crl",
    "common_name",
    "create_ca",
    "issue",
    "issued_by",
    "load_issued",
    "new_key",
    "not_after",
    "revoked_serials",
    "role_unit",
    "roles_of",
    "same_key",
    "sign",
    "verify_signature",
    "write_cert",
    "write_crl",
    "write_key",
]

FLEET_ORG = "City Kiosk Fleet"
# A device certificate names its provisioned role in one subject OU,
# "role:<role>" ("role:counter", "role:door"): central's device listener admits
# only "role:counter" to certificate issuance (central/issuance/service.py).
ROLE_UNIT_PREFIX = "role:"

Issued: TypeAlias = builder.KeyPair[ec.EllipticCurvePrivateKey]
"""A fleet key and its certificate (``.write(cert_path, key_path)``)."""


def new_key() -> ec.EllipticCurvePrivateKey:
    return builder.ec_key()


def create_ca(common_name: str, *, organisation: str = FLEET_ORG, days: int = 3650) -> Issued:
    now = builder.now()
    return builder.create_ca(
        builder.ec_key(),
        builder.name(organisation=organisation, common_name=common_name),
        builder.Validity(now - builder.CLOCK_SKEW, now + dt.timedelta(days=days)),
        usage=builder.key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True),
    )


def issue(
    ca: Issued,
    common_name: str,
    *,
    server_names: list[str] | None = None,
    client: bool = True,
    organisation: str = FLEET_ORG,
    days: int = 825,
    not_before: dt.datetime | None = None,
    role: str | None = None,
) -> Issued:
    """Issue a leaf certificate; ``server_names`` (DNS names or IPs) make it a server cert;
    ``role`` (a device's provisioned role) goes into the subject as OU ``role:<role>``."""
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    if server_names:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    return builder.issue(
        ca,
        builder.ec_key(),
        builder.name(
            organisation=organisation,
            units=[role_unit(role)] if role else (),
            common_name=common_name,
        ),
        builder.Validity.lasting(days, start=not_before),
        extended_usage=usages,
        alt_names=server_names or (),
    )


def role_unit(role: str) -> str:
    """The subject OU that carries a device's role."""
    return ROLE_UNIT_PREFIX + role


def roles_of(cert: x509.Certificate) -> list[str]:
    """The roles a certificate's subject names (none for one issued before roles)."""
    units = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    values = [str(unit.value) for unit in units]
    return [v[len(ROLE_UNIT_PREFIX) :] for v in values if v.startswith(ROLE_UNIT_PREFIX)]


def load_issued(cert_path: Path, key_path: Path) -> Issued:
    return builder.KeyPair(builder.load_key(key_path, "ec"), builder.load_cert(cert_path))


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
    return builder.build_crl(ca, sorted(revoked.items()), next_update=not_after(ca.cert))


def revoked_serials(path: Path) -> dict[int, dt.datetime]:
    """Serial -> revocation time of a CRL file (empty when the file does not exist)."""
    if not path.exists():
        return {}
    return builder.revocations(builder.load_crl(path))
