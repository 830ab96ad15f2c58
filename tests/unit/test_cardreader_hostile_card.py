"""A hostile card against the JPKI flow (hypothesis): a card that answers
each command with what a real card might say, slightly wrong or plainly
garbage -- a real certificate with bytes changed or cut, header lengths that
promise too much, one-byte chunks, 61xx/6Cxx chains, odd retry counters,
signatures of the wrong size. Whatever it answers, the flow ends with one of
our errors (the kiosk shows "unreadable card"), sends VERIFY at most once,
selects nothing but the JPKI application and stays within a bounded number
of APDUs."""

from __future__ import annotations

import contextlib

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given, settings
from hypothesis import strategies as st

from cardreader import apdu, certs, credential, jpki
from cardreader.errors import CardReaderError, MalformedResponseError
from cardreader.identify import jpki_token_label
from cardreader.pcsc import CardSession
from tests.harness.issuance import issuance_pki

CERT = issuance_pki().user("valid").cert.public_bytes(Encoding.DER)
# A whole certificate of 0x8000 bytes in 256-byte reads, each maybe chained.
MAX_APDUS = 0x8000 // jpki.CHUNK + 64

status_words = st.one_of(
    st.sampled_from([0x9000, 0x6282, 0x6B00, 0x6982, 0x6983, 0x6984, 0x6A82, 0x6700]),
    st.integers(0x6100, 0x61FF),
    st.integers(0x6C00, 0x6CFF),
    st.integers(0x63C0, 0x63CF),
    st.integers(0, 0xFFFF),
)


@st.composite
def certificate_files(draw: st.DrawFn) -> bytes:
    """The real certificate, with some bytes changed and maybe cut short or
    a header that promises another length."""
    data = bytearray(CERT)
    for position, value in draw(st.lists(st.tuples(st.integers(0, len(CERT) - 1),
                                                   st.integers(0, 255)), max_size=6)):  # fmt: skip
        data[position] = value
    if draw(st.booleans()):
        data[2:4] = draw(st.integers(0, 0xFFFF)).to_bytes(2, "big")
    return bytes(data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data)


class HostileCard:
    """A raw transmit that answers from hypothesis draws, per command."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data
        self.file = data.draw(certificate_files())
        self.sent: list[bytes] = []

    def sw(self) -> bytes:
        return self.data.draw(status_words).to_bytes(2, "big")

    def __call__(self, command: bytes) -> bytes:
        self.sent.append(command)
        if len(self.sent) > MAX_APDUS:
            raise AssertionError(f"more than {MAX_APDUS} APDUs")
        if self.data.draw(st.integers(0, 9)) == 0:  # now and then, plain garbage
            return self.data.draw(st.binary(max_size=300))
        ins = command[1]
        if ins == 0xB0 and len(command) == 5:
            short_ef = command[2] & 0x80  # by short EF identifier: offset in P2
            offset = command[3] if short_ef else (command[2] << 8) | command[3]
            le = command[4] or 256
            chunk = self.file[offset : offset + le]
            cut = self.data.draw(st.integers(0, len(chunk)))
            return chunk[: len(chunk) if self.data.draw(st.booleans()) else cut] + self.sw()
        if ins == 0x2A:
            size = self.data.draw(st.sampled_from([0, 1, 128, 255, 256, 257, 512]))
            return bytes(size) + self.sw()
        return self.sw()


def authenticate(session: CardSession) -> bytes:
    """What :func:`cardreader.jpki.authenticate` does on the connection."""
    card = jpki.Jpki(session, extended_reads=False)
    card.select()
    der = card.read_auth_certificate()
    certs.check_valid(certs.describe(der))
    card.verify_pin("1234")
    return card.sign(b"challenge")


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_hostile_card_answers_end_in_our_errors_only(data: st.DataObject) -> None:
    card = HostileCard(data)
    with contextlib.suppress(CardReaderError):
        signature = authenticate(CardSession("hostile", card, timeout=None))
        assert len(signature) in (128, 256, 384, 512)
    verifies = [c for c in card.sent if c[1] == 0x20 and len(c) > 5]
    assert len(verifies) <= 1
    selects = [c for c in card.sent if c[1] == 0xA4 and c[2] == 0x04]
    assert all(c[5 : 5 + c[4]] == apdu.JPKI_AID for c in selects)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_hostile_card_pin_and_signature_answers_end_in_our_errors_only(
    data: st.DataObject,
) -> None:
    card = HostileCard(data)
    jpki_card = jpki.Jpki(CardSession("hostile", card, timeout=None))
    with contextlib.suppress(CardReaderError):
        jpki_card.verify_pin("1234")
        assert len(jpki_card.sign(b"challenge")) in (128, 256, 384, 512)
    assert len([c for c in card.sent if c[1] == 0x20 and len(c) > 5]) <= 1


# A tap: SELECT AP, token label (maybe SELECT + READ instead), certificate head
# (maybe SELECT + READ, then one more read, maybe SELECT + READ), each perhaps
# followed by a 6Cxx resend and a chain of GET RESPONSE.
MAX_TAP_APDUS = 9 * 66


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_hostile_card_tap_ends_in_our_errors_only(data: st.DataObject) -> None:
    """The check-in tap (``CardService.tap``'s card part) against the same card."""
    card = HostileCard(data)
    session = CardSession("hostile", card, timeout=None)
    with contextlib.suppress(CardReaderError):
        if jpki_token_label(session) is not None:
            head, _ = jpki.Jpki(session).read_auth_head()
            assert credential.issuer_serial_reference(bytes(32), head.issuer, head.serial)
    assert len(card.sent) <= MAX_TAP_APDUS
    assert not [c for c in card.sent if c[1] in (0x20, 0x2A)]  # no PIN, no signature
    selects = [c for c in card.sent if c[1] == 0xA4 and c[2] == 0x04]
    assert all(c[5 : 5 + c[4]] == apdu.JPKI_AID for c in selects)


def test_jpki_tap_head_answered_a_byte_at_a_time_is_refused_at_once() -> None:
    """A certificate head answered a few bytes per READ BINARY: refused after
    the first short answer, not read byte by byte."""
    sent: list[bytes] = []

    def raw(command: bytes) -> bytes:
        sent.append(command)
        if command[1] == 0xB0:
            return b"\x30\x82\x06\x00\x30" + b"\x62\x82"
        return b"\x90\x00"

    card = jpki.Jpki(CardSession("hostile", raw, timeout=None))
    with pytest.raises(MalformedResponseError, match="ends inside its head"):
        card.read_auth_head()
    assert len(sent) == 1


def test_jpki_card_answering_a_byte_at_a_time_is_refused_at_once() -> None:
    """A certificate header promising 0x7FFF bytes, then one byte per READ
    BINARY: before, tens of thousands of APDUs (minutes at the counter)."""
    sent: list[bytes] = []

    def raw(command: bytes) -> bytes:
        sent.append(command)
        if command[1] == 0xB0:
            offset = (command[2] << 8) | command[3]
            return (b"\x30\x82\x7f\xfb" if offset == 0 else b"\x00") + b"\x90\x00"
        return b"\x90\x00"

    card = jpki.Jpki(CardSession("hostile", raw, timeout=None))
    with pytest.raises(MalformedResponseError, match="ends after 5 of 32767"):
        card.read_auth_certificate()
    assert len(sent) == 3  # SELECT EF, the header, one short chunk
