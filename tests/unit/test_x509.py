"""The one X.509 builder (foundation.x509), checked with cryptography itself."""

from __future__ import annotations

import datetime as dt
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from foundation import x509 as builder

# One RSA key for the whole module: generating RSA-2048 keys is slow.
RSA_KEY = builder.rsa_key()


def _ca(key: builder.PrivateKey | None = None) -> builder.KeyPair[builder.PrivateKey]:
    return builder.create_ca(
        key or builder.ec_key(),
        builder.name(country="JP", organisation="Test City", units=["Unit"], common_name="CA"),
        builder.Validity.lasting(30),
    )


LEAF = builder.name(common_name="leaf")
DAY = builder.Validity.lasting(1)


def _leaf(ca: builder.KeyPair[builder.PrivateKey]) -> x509.Certificate:
    return builder.issue(ca, builder.ec_key(), LEAF, DAY).cert


def _ca_validity(ca: builder.KeyPair[builder.PrivateKey]) -> builder.Validity:
    return builder.Validity(ca.cert.not_valid_before_utc, ca.cert.not_valid_after_utc)


def _is_valid_now(cert: x509.Certificate) -> bool:
    return cert.not_valid_before_utc <= builder.now() < cert.not_valid_after_utc


def test_keys_are_ec_p256_and_rsa_2048() -> None:
    key = builder.ec_key()
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert isinstance(RSA_KEY, rsa.RSAPrivateKey) and RSA_KEY.key_size == 2048
    assert RSA_KEY.public_key().public_numbers().e == 65537


def test_name_orders_country_organisation_units_common_name() -> None:
    name = builder.name(common_name="cn", units=["a", "b"], organisation="o", country="JP")
    assert name.rfc4514_string() == "CN=cn,OU=b,OU=a,O=o,C=JP"  # RFC 4514 lists it reversed
    assert builder.name(organisation="o").get_attributes_for_oid(NameOID.COMMON_NAME) == []


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_ca_signs_a_leaf_that_verifies(kind: str) -> None:
    ca = _ca(builder.ec_key() if kind == "ec" else RSA_KEY)
    leaf = _leaf(ca)
    leaf.verify_directly_issued_by(ca.cert)
    assert ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = ca.cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert _is_valid_now(ca.cert) and _is_valid_now(leaf)
    assert builder.common_name(leaf) == "leaf" and builder.common_name(ca.cert) == "CA"


def test_ca_key_identifier_is_optional() -> None:
    subject = builder.name(common_name="bare")
    bare = builder.create_ca(
        builder.ec_key(), subject, builder.Validity.lasting(1), key_identifier=False
    )
    with pytest.raises(x509.ExtensionNotFound):
        bare.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    _ca().cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)


def test_leaf_carries_key_usage_eku_san_and_serial_as_asked() -> None:
    leaf = builder.issue(
        _ca(),
        builder.ec_key(),
        LEAF,
        DAY,
        serial=4242,
        usage=builder.key_usage(digital_signature=True, key_encipherment=True),
        extended_usage=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        alt_names=["broker.example", "192.0.2.7"],
    ).cert
    assert leaf.serial_number == 4242
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.key_encipherment
    assert not usage.value.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["broker.example"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.0.2.7")]


def test_leaf_leaves_out_extensions_not_asked_for() -> None:
    leaf = builder.issue(_ca(), builder.ec_key(), LEAF, DAY, end_entity=False).cert
    present = {type(e.value) for e in leaf.extensions}
    assert present == {x509.AuthorityKeyIdentifier}


def test_validity_ended_gives_an_already_expired_leaf() -> None:
    validity = builder.Validity.ended(dt.timedelta(days=30), lasted=dt.timedelta(days=365))
    leaf = builder.issue(_ca(), builder.ec_key(), LEAF, validity).cert
    assert leaf.not_valid_after_utc < builder.now() - dt.timedelta(days=29)
    assert not _is_valid_now(leaf)
    assert builder.not_after(leaf) == leaf.not_valid_after_utc


def test_validity_lasting_starts_before_now_or_at_start() -> None:
    lasting = builder.Validity.lasting(10)
    assert lasting.not_before < builder.now() < lasting.not_after
    assert lasting.not_after - lasting.not_before == dt.timedelta(days=10)
    start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert builder.Validity.lasting(1, start=start).not_before == start


def test_crl_lists_the_serials_and_is_signed_by_the_ca() -> None:
    ca = _ca(RSA_KEY)
    when = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
    crl = builder.build_crl(ca, [(7, when), (3, when)], next_update=builder.now() + dt.timedelta(1))
    assert crl.is_signature_valid(ca.key.public_key())
    assert crl.issuer == ca.cert.subject
    assert [entry.serial_number for entry in crl] == [7, 3]
    assert builder.revocations(crl) == {7: when, 3: when}
    assert not crl.is_signature_valid(_ca().key.public_key())


def test_write_key_is_owner_only_and_replaces_a_wider_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "key.pem"
    builder.write_key(builder.ec_key(), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    builder.write_key(builder.ec_key(), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["key.pem"]  # no temporary file left


def test_load_round_trips_what_write_wrote(tmp_path: Path) -> None:
    ca = _ca(RSA_KEY)
    leaf = builder.issue(ca, builder.ec_key(), LEAF, _ca_validity(ca))
    leaf.write(tmp_path / "leaf.pem", tmp_path / "leaf.key")
    ca.write(tmp_path / "ca.pem", tmp_path / "ca.key")
    crl = builder.build_crl(ca, [(9, builder.now())], next_update=builder.now() + dt.timedelta(1))
    builder.write_crl(crl, tmp_path / "crl.pem")
    assert builder.load_cert(tmp_path / "leaf.pem") == leaf.cert
    loaded = builder.load_key(tmp_path / "leaf.key", "ec")
    assert loaded.private_numbers() == leaf.key.private_numbers()
    assert (
        builder.load_key(tmp_path / "ca.key", "rsa").private_numbers() == RSA_KEY.private_numbers()
    )
    assert builder.load_crl(tmp_path / "crl.pem") == crl
    assert builder.key_pem(leaf.key) == (tmp_path / "leaf.key").read_bytes()
    assert builder.cert_pem(leaf.cert) == (tmp_path / "leaf.pem").read_bytes()
    assert leaf.der == leaf.cert.public_bytes(Encoding.DER)


def test_load_key_refuses_the_wrong_kind(tmp_path: Path) -> None:
    builder.write_key(RSA_KEY, tmp_path / "rsa.key")
    with pytest.raises(ValueError, match="expected an EC private key"):
        builder.load_key(tmp_path / "rsa.key", "ec")
