"""Opaque credential references."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardreader import credential
from cardreader.errors import CredentialKeyError
from foundation.logs import TWELVE_DIGITS
from foundation.privacy import check_event_data

KEY = bytes(range(32))


def test_credential_reference_is_stable_keyed_and_shaped() -> None:
    uid = bytes.fromhex("012E4CD2A1B2C3D4")
    ref = credential.member_reference(KEY, uid)
    assert ref == credential.member_reference(KEY, uid)
    assert ref != credential.member_reference(bytes(32), uid)
    assert ref.startswith("m1-") and len(ref.split("-")) == 5
    assert all(len(g) == 8 for g in ref.split("-")[1:])
    assert uid.hex() not in ref.lower()
    cert_ref = credential.certificate_reference(KEY, bytes(32))
    assert cert_ref.startswith("j1-")
    # Same bytes as a member UID and as a fingerprint never collide (domain separation).
    assert cert_ref[3:] != credential.member_reference(KEY, bytes(32))[3:]


@given(st.binary(min_size=1, max_size=16))
def test_credential_reference_never_looks_like_a_12_digit_number(uid: bytes) -> None:
    ref = credential.member_reference(KEY, uid)
    assert not TWELVE_DIGITS.search(ref)
    check_event_data({"credential": ref})  # the outbox's personal-data guard accepts it


def test_credential_key_file_forms_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "key"
    credential.write_new_key(path)
    assert len(credential.load_key(path)) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(CredentialKeyError, match="exists already"):
        credential.write_new_key(path)
    raw = tmp_path / "raw"
    raw.write_bytes(KEY)
    assert credential.load_key(raw) == KEY
    (tmp_path / "short").write_text("abcd")
    with pytest.raises(CredentialKeyError, match="64 hex"):
        credential.load_key(tmp_path / "short")
    with pytest.raises(CredentialKeyError, match="keygen"):
        credential.load_key(tmp_path / "missing")


def test_credential_jpki_references_of_both_schemes_never_collide() -> None:
    issuer, serial = b"\x30\x03\x31\x01\x00", b"\x07\x05\xd9\x90"
    j2 = credential.issuer_serial_reference(KEY, issuer, serial)
    assert j2.startswith("j2-") and not credential.is_legacy_jpki(j2)
    j1 = credential.certificate_reference(KEY, bytes(32))
    assert credential.is_legacy_jpki(j1) and j1[3:] != j2[3:]
    assert not TWELVE_DIGITS.search(j2)
