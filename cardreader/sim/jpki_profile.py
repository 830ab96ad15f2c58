"""Certificates with the size and shape of the JPKI ones on a My Number Card,
for the TEST PKI (:mod:`cardreader.sim.testpki`). Built with ``cryptography``.

Shape of a card's user-authentication certificate, kept here:

* v3, a short positive serial (a few bytes), sha256WithRSAEncryption,
  RSA-2048 with e = 65537;
* issuer ``C=JP, O=…, OU=… for user authentication, OU=<agency>`` (four RDNs,
  about 130 bytes of DER), subject ``C=JP, CN=<opaque string>``: no name,
  address, birth date or sex;
* extensions: key usage (critical, digitalSignature), certificate policies
  (critical, with a CPS URI), CRL distribution points (a directory name and
  a URI), authority information access (OCSP), authority and subject key
  identifiers.

The signing certificate has the same frame plus a subjectAltName carrying
the holder's name, address, birth date and sex as ``otherName`` entries
under the JPKI attribute OIDs (``1.2.392.200149.8.5.5.1``–``.5.6``), a
subject that names the municipality, and key usage with non-repudiation.

Every name says TEST and every URL is under ``.invalid``. The certificate
policy OIDs of real cards are not reproduced: ours sit under a test arc
(``…8.5.99``) with the same length, so the DER has the real size.
"""

from __future__ import annotations

import secrets

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from foundation import x509 as builder

TEST_ORG = "JPKI TEST"
TEST_AGENCY = "TEST Agency for Local Authority Information Systems - not J-LIS"
AUTH_UNIT = "TEST JPKI for user authentication"
SIGN_UNIT = "TEST JPKI for digital signature"
# Test policy arcs of the real length (the real OIDs are not reproduced).
AUTH_POLICY = x509.ObjectIdentifier("1.2.392.200149.8.5.99.3.30")
SIGN_POLICY = x509.ObjectIdentifier("1.2.392.200149.8.5.99.1.10")
CPS_URI = "http://www.jpki-test.invalid/cps.html"
# A policy notice: makes the DER as large as a card's certificate (about
# twice our earlier 905-byte test certificate) and says what this is.
NOTICE = (
    "TEST MATERIAL of the city-kiosk project. This certificate is not issued "
    "under the JPKI Act by J-LIS or any municipality and proves nothing about "
    "anyone; never trust it outside tests."
)
# subjectAltName attributes of the signing certificate (otherName type ids).
OID_NAME = x509.ObjectIdentifier("1.2.392.200149.8.5.5.1")
OID_NAME_ALT = x509.ObjectIdentifier("1.2.392.200149.8.5.5.2")
OID_SEX = x509.ObjectIdentifier("1.2.392.200149.8.5.5.3")
OID_BIRTH = x509.ObjectIdentifier("1.2.392.200149.8.5.5.4")
OID_ADDRESS = x509.ObjectIdentifier("1.2.392.200149.8.5.5.5")
OID_ADDRESS_ALT = x509.ObjectIdentifier("1.2.392.200149.8.5.5.6")

KeyPair = builder.KeyPair[rsa.RSAPrivateKey]


def ca_name(unit: str) -> x509.Name:
    """A root's name in the J-LIS order: C, O, OU=<side>, OU=<agency>."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, TEST_ORG),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, TEST_AGENCY),
        ]
    )


def short_serial() -> int:
    """A positive serial of four bytes, like the card's (e.g. ``0705d990``)."""
    return secrets.randbits(31) | (1 << 24)


def _utf8(text: str) -> bytes:
    """DER UTF8String (what the otherName values hold)."""
    raw = text.encode("utf-8")
    if len(raw) < 0x80:
        return b"\x0c" + bytes([len(raw)]) + raw
    size = len(raw).to_bytes((len(raw).bit_length() + 7) // 8, "big")
    return b"\x0c" + bytes([0x80 | len(size)]) + size + raw


def _frame(
    issuer: KeyPair, key: rsa.RSAPrivateKey, subject: x509.Name, validity: builder.Validity,
    *, unit: str, policy: x509.ObjectIdentifier, crl_cn: str,
) -> x509.CertificateBuilder:  # fmt: skip
    """Everything both user certificates share."""
    crl_dir = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, TEST_ORG),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "CRL Distribution Points"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "TEST-ken"),
            x509.NameAttribute(NameOID.COMMON_NAME, crl_cn),
        ]
    )
    slug = "auth" if policy == AUTH_POLICY else "sign"
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(short_serial())
        .not_valid_before(validity.not_before)
        .not_valid_after(validity.not_after)
        .add_extension(
            x509.CertificatePolicies(
                [
                    x509.PolicyInformation(
                        policy,
                        [CPS_URI, x509.UserNotice(notice_reference=None, explicit_text=NOTICE)],
                    )
                ],
            ),
            critical=True,
        )
        .add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        full_name=[
                            x509.DirectoryName(crl_dir),
                            x509.UniformResourceIdentifier(
                                f"http://crl.jpki-test.invalid/{slug}/{crl_cn}.crl"
                            ),
                        ],
                        relative_name=None,
                        reasons=None,
                        crl_issuer=None,
                    )
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.OCSP,
                        x509.UniformResourceIdentifier(f"http://ocsp-{slug}.jpki-test.invalid"),
                    ),
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS,
                        x509.UniformResourceIdentifier(
                            f"http://www.jpki-test.invalid/ca/{slug}-root.cer"
                        ),
                    ),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def auth_certificate(
    root: KeyPair, key: rsa.RSAPrivateKey, cn: str, validity: builder.Validity, crl_cn: str
) -> KeyPair:
    """A user-authentication certificate: opaque CN, digitalSignature only."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )
    frame = _frame(
        root, key, subject, validity, unit=AUTH_UNIT, policy=AUTH_POLICY, crl_cn=crl_cn
    ).add_extension(builder.key_usage(digital_signature=True), critical=True)
    return builder.KeyPair(key, frame.sign(root.key, hashes.SHA256()))


def sign_certificate(
    root: KeyPair, key: rsa.RSAPrivateKey, validity: builder.Validity, crl_cn: str
) -> KeyPair:
    """A signing certificate for a made-up TEST holder (all values fictitious)."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "TEST-Shi"),
            x509.NameAttribute(NameOID.COMMON_NAME, "TEST" + secrets.token_hex(10).upper()),
        ]
    )
    holder = [
        (OID_NAME, "試験　花子"),
        (OID_NAME_ALT, "TEST HANAKO"),
        (OID_SEX, "2"),
        (OID_BIRTH, "S550101"),
        (OID_ADDRESS, "試験県試験市試験町一丁目２番３号　テスト"),
        (OID_ADDRESS_ALT, "1-2-3 TEST-cho, TEST-shi, TEST-ken"),
    ]
    alt = x509.SubjectAlternativeName([x509.OtherName(oid, _utf8(v)) for oid, v in holder])
    frame = (
        _frame(root, key, subject, validity, unit=SIGN_UNIT, policy=SIGN_POLICY, crl_cn=crl_cn)
        .add_extension(alt, critical=False)
        .add_extension(
            builder.key_usage(digital_signature=True, content_commitment=True), critical=True
        )
    )
    return builder.KeyPair(key, frame.sign(root.key, hashes.SHA256()))


def create_root(unit: str, validity: builder.Validity) -> KeyPair:
    """A self-signed TEST root in the J-LIS name shape (RSA-2048)."""
    return builder.create_ca(builder.rsa_key(), ca_name(unit), validity)
