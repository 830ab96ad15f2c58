"""Standard middleware binds to the virtual My Number Card as to a real one:
OpenSC's JPKI driver, through the real pcscd + vpcd, lists the card's
certificates and PINs (pkcs15-tool) and signs with each PIN (pkcs11-tool)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from cardreader.sim.mynumber import MyNumberCard
from cardreader.sim.profiles import mynumber_card
from cardreader.sim.testpki import TestPki, create_test_pki
from tests.harness.cards import inserted
from tests.harness.pcscd import Pcscd

PIN, PASSWORD = "4729", "KIOSK2026"
# Debian's multiarch place of OpenSC's PKCS#11 module (x86_64 or arm64).
PKCS11_MODULES = sorted(Path("/usr/lib").glob("*/opensc-pkcs11.so"))
MESSAGE = b"city-kiosk middleware check"
AUTH_TOKEN, SIGN_TOKEN = "JPKI (User Authentication PIN)", "JPKI (Digital Signature PIN)"


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return create_test_pki()


@pytest.fixture
def card(pki: TestPki, tmp_path: Path) -> MyNumberCard:
    return mynumber_card(pki, pin=PIN, sign_password=PASSWORD, state_path=tmp_path / "pin.json")


def _tool(pcscd: Pcscd, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which(args[0])
    if binary is None:  # a missing package is a broken machine: fail, never skip
        pytest.fail(f"{args[0]} is not installed: run ./scripts/bootstrap (Debian package opensc)")
    env = {**os.environ, **pcscd.env, "OPENSC_CONF": "/dev/null"}
    return subprocess.run(
        [binary, *args[1:]], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _pkcs11(pcscd: Pcscd, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    if not PKCS11_MODULES:
        pytest.fail("opensc-pkcs11.so missing: run ./scripts/bootstrap (Debian package opensc)")
    module = str(PKCS11_MODULES[0])
    return _tool(pcscd, "pkcs11-tool", "--module", module, "--token-label", token, *args)


def _verify(der: bytes, signature: bytes) -> None:
    key = x509.load_der_x509_certificate(der).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(signature, MESSAGE, padding.PKCS1v15(), hashes.SHA256())


def test_opensc_pkcs15_tool_lists_certificates_and_pins(pcscd: Pcscd, card: MyNumberCard) -> None:
    with inserted(card, pcscd):
        certs = _tool(pcscd, "pkcs15-tool", "--list-certificates")
        pins = _tool(pcscd, "pkcs15-tool", "--list-pins")
    assert certs.returncode == 0, certs.stderr
    for label in (
        "User Authentication Certificate",
        "Digital Signature Certificate",
        "User Authentication Certificate CA",
        "Digital Signature Certificate CA",
    ):
        assert f"[{label}]" in certs.stdout
    serial = x509.load_der_x509_certificate(card.cert_der).serial_number
    assert f"{serial:08X}" in certs.stdout  # read from EF 000A without a PIN
    assert pins.returncode == 0, pins.stderr
    assert "User Authentication PIN" in pins.stdout and "Digital Signature PIN" in pins.stdout
    assert "Tries left     : 3" in pins.stdout and "Tries left     : 5" in pins.stdout
    # Listing never needed a PIN and never touched the signing certificate.
    assert card.verify_attempts == 0 and 0x0001 not in card.files_read


def test_opensc_pkcs11_tool_signs_with_each_pin(
    pcscd: Pcscd, card: MyNumberCard, tmp_path: Path
) -> None:
    message, out_auth, out_sign = tmp_path / "m", tmp_path / "auth.sig", tmp_path / "sign.sig"
    message.write_bytes(MESSAGE)
    sign = ("--sign", "-m", "SHA256-RSA-PKCS", "-i", str(message))
    # One tap per tool run: the card keeps a verified PIN while powered and
    # then answers a retry query with 9000, which OpenSC's driver refuses.
    with inserted(card, pcscd):
        auth = _pkcs11(pcscd, AUTH_TOKEN, "--login", "--pin", PIN, *sign, "--id", "01",
                       "-o", str(out_auth))  # fmt: skip
    with inserted(card, pcscd):
        signing = _pkcs11(pcscd, SIGN_TOKEN, "--login", "--pin", PASSWORD, *sign, "--id", "02",
                          "-o", str(out_sign))  # fmt: skip
    with inserted(card, pcscd):
        wrong = _pkcs11(pcscd, SIGN_TOKEN, "--login", "--pin", "WRONG123", *sign, "--id", "02",
                        "-o", str(tmp_path / "x"))  # fmt: skip
    assert auth.returncode == 0, auth.stderr
    _verify(card.cert_der, out_auth.read_bytes())
    assert signing.returncode == 0, signing.stderr
    assert card.sign_cert_der is not None
    _verify(card.sign_cert_der, out_sign.read_bytes())
    # A wrong signing password costs one of its own 5 tries, not the PIN's.
    assert wrong.returncode != 0
    assert card.sign_pin_state.tries_left == 4 and card.pin_state.tries_left == 3


def test_opensc_signing_certificate_needs_the_signing_password(
    pcscd: Pcscd, card: MyNumberCard, tmp_path: Path
) -> None:
    out = tmp_path / "sign.der"
    read = ("--read-object", "--type", "cert", "--id", "02", "-o", str(out))
    with inserted(card, pcscd):
        without = _pkcs11(pcscd, SIGN_TOKEN, *read)
    with inserted(card, pcscd):
        with_password = _pkcs11(pcscd, SIGN_TOKEN, "--login", "--pin", PASSWORD, *read)
    assert without.returncode != 0
    assert with_password.returncode == 0, with_password.stderr
    assert out.read_bytes() == card.sign_cert_der
