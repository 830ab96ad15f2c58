"""The enrolment contract's reference pattern is the form the card layer
computes: if cardreader.credential changes its references, this fails
before a device's enrolment is refused by central as request_invalid."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from cardreader.credential import certificate_reference, member_reference
from contracts.enrolment import CREDENTIAL_REF_PATTERN

keys = st.binary(min_size=32, max_size=32)


@given(key=keys, uid=st.binary(min_size=1, max_size=16))
def test_enrolment_contract_accepts_every_member_card_reference(key: bytes, uid: bytes) -> None:
    assert re.fullmatch(CREDENTIAL_REF_PATTERN, member_reference(key, uid))


@given(key=keys, fingerprint=st.binary(min_size=32, max_size=32))
def test_enrolment_contract_accepts_every_certificate_reference(
    key: bytes, fingerprint: bytes
) -> None:
    assert re.fullmatch(CREDENTIAL_REF_PATTERN, certificate_reference(key, fingerprint))


def test_enrolment_contract_refuses_a_raw_uid() -> None:
    assert not re.fullmatch(CREDENTIAL_REF_PATTERN, "012e4cd2a1b2c3d4")
