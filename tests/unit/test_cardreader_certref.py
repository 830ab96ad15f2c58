"""The certificate head (serial and issuer from the first bytes of the DER),
the j2 reference built from it, and the shape of the JPKI test certificates."""

from __future__ import annotations

import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from cardreader import certref, credential
from cardreader.errors import CertificateError
from cardreader.service import jpki_reference
from cardreader.sim import jpki_profile
from cardreader.sim.testpki import TestPki, create_test_pki
from contracts.enrolment import CREDENTIAL_REF_PATTERN

KEY = bytes(range(32))


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return create_test_pki()


def test_certref_head_matches_the_parsed_certificate(pki: TestPki) -> None:
    for pair in [*pki.users.values(), *pki.signers.values(), pki.root]:
        head = certref.parse_head(pair.der)
        assert int.from_bytes(head.serial, "big") == pair.cert.serial_number
        assert head.issuer == pair.cert.issuer.public_bytes()
        assert pair.der[head.end - len(head.issuer) : head.end] == head.issuer
        # Exactly the head is needed: one byte less asks for the rest.
        assert certref.parse_head(pair.der[: head.end]) == head
        with pytest.raises(certref.NeedMore) as more:
            certref.parse_head(pair.der[: head.end - 1])
        assert more.value.total == head.end


def test_certref_head_of_a_jpki_shaped_certificate_fits_one_short_read(pki: TestPki) -> None:
    for pair in pki.users.values():
        assert certref.parse_head(pair.der).end <= 192


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x31\x82\x06\x00",  # not a SEQUENCE
        b"\x30\x82\x06\x00\x30\x82\x05\x00\xa0\x03\x02\x01\x02\x04\x04abcd",  # serial not INTEGER
        b"\x30\x82\x06\x00\x30\x82\x05\x00\xa0\x03\x02\x01\x02\x02\x00",  # empty serial
        b"\x30\x84\x00\x00\x06\x00",  # 4-byte length form
        # an issuer that claims 4 KB: refused, never read
        b"\x30\x82\x06\x00\x30\x82\x05\x00\x02\x01\x05\x30\x00\x30\x82\x10\x00",
    ],
)
def test_certref_garbage_is_a_certificate_error(garbage: bytes) -> None:
    with pytest.raises(CertificateError):
        certref.parse_head(garbage + bytes(200))


def test_certref_j2_reference_is_stable_distinct_and_shaped(pki: TestPki) -> None:
    refs = {jpki_reference(KEY, pair.der) for pair in pki.users.values()}
    assert len(refs) == len(pki.users)
    valid = pki.users["valid"].der
    ref = jpki_reference(KEY, valid)
    assert ref == jpki_reference(KEY, valid) and ref.startswith("j2-")
    assert ref != jpki_reference(bytes(32), valid)
    assert re.fullmatch(CREDENTIAL_REF_PATTERN, ref)
    # Issuer and serial are length-separated: moving a byte between them changes it.
    head = certref.parse_head(valid)
    moved = credential.issuer_serial_reference(KEY, head.issuer + head.serial[:1], head.serial[1:])
    assert moved != ref
    with pytest.raises(ValueError):
        credential.issuer_serial_reference(KEY, b"", head.serial)


def test_testpki_user_certificates_have_the_jpki_size_and_shape(pki: TestPki) -> None:
    for variant, pair in pki.users.items():
        cert = pair.cert
        key = cert.public_key()
        assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048
        assert key.public_numbers().e == 65537
        assert 1_400 <= len(pair.der) <= 2_200, variant
        assert cert.serial_number.bit_length() <= 32
        assert [a.oid for a in cert.subject] == [NameOID.COUNTRY_NAME, NameOID.COMMON_NAME]
        assert [a.oid for a in cert.issuer][:2] == [NameOID.COUNTRY_NAME, NameOID.ORGANIZATION_NAME]
        found = {e.oid: e for e in cert.extensions}
        assert found[ExtensionOID.KEY_USAGE].critical
        assert found[ExtensionOID.KEY_USAGE].value.digital_signature
        assert found[ExtensionOID.CERTIFICATE_POLICIES].critical
        assert ExtensionOID.CRL_DISTRIBUTION_POINTS in found
        assert ExtensionOID.AUTHORITY_INFORMATION_ACCESS in found
        assert ExtensionOID.SUBJECT_ALTERNATIVE_NAME not in found  # no personal data
        cert.verify_directly_issued_by(pki.root.cert)


def test_testpki_signing_certificates_carry_the_holder_in_subject_alt_name(pki: TestPki) -> None:
    assert pki.sign_root is not None
    for pair in pki.signers.values():
        alt = pair.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        oids = {n.type_id for n in alt if isinstance(n, x509.OtherName)}
        assert {jpki_profile.OID_NAME, jpki_profile.OID_BIRTH, jpki_profile.OID_ADDRESS} <= oids
        usage = pair.cert.extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.content_commitment
        pair.cert.verify_directly_issued_by(pki.sign_root.cert)
