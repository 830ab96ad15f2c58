"""APDU/TLV parsing and the transport's status-word handling, without pcscd.

The hypothesis tests feed random card answers to every parser and to the
JPKI and identification flows: the only exceptions allowed out are ours.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardreader import apdu, jpki
from cardreader.errors import (
    CardReaderError,
    CardTimeoutError,
    ForbiddenCommandError,
    MalformedResponseError,
)
from cardreader.identify import identify
from cardreader.pcsc import CardSession


def scripted(*answers: bytes) -> tuple[CardSession, list[bytes]]:
    """A session over a fake raw transmit that plays ``answers`` in order."""
    sent: list[bytes] = []
    queue = list(answers)

    def raw(command: bytes) -> bytes:
        sent.append(command)
        return queue.pop(0) if queue else b"\x6f\x00"

    return CardSession("fake", raw, timeout=None), sent


# -- builders and masks ---------------------------------------------------


def test_apdu_builders_match_reference_bytes() -> None:
    assert apdu.select_aid(apdu.JPKI_AID).hex() == "00a4040c0ad392f000260100000001"
    assert apdu.select_ef(0x000A).hex() == "00a4020c02000a"
    assert apdu.read_binary(0, 4).hex() == "00b0000004"
    assert apdu.read_binary(0x104, 256).hex() == "00b0010400"
    assert apdu.read_binary_extended(4, 0x0385).hex() == "00b00004000385"
    assert apdu.verify(b"1234").hex() == "0020008004" + b"1234".hex()
    assert apdu.verify_status().hex() == "00200080"
    info = apdu.sha256_digest_info(b"x")
    assert len(info) == 51 and info.startswith(apdu.SHA256_DIGEST_INFO_PREFIX)
    assert apdu.compute_signature(info)[:5].hex() == "802a008033"
    assert apdu.compute_signature(info)[-1] == 0


def test_apdu_trace_masks_verify_data() -> None:
    assert apdu.trace_text(apdu.verify(b"4729")) == "00 20 00 80 04 ** ** ** **"
    assert apdu.trace_text(apdu.verify_status()) == "00 20 00 80"
    assert apdu.trace_text(apdu.select_ef(0x18)) == "00 A4 02 0C 02 00 18"


def test_apdu_guard_allows_only_the_jpki_aid() -> None:
    apdu.check_allowed(apdu.select_aid(apdu.JPKI_AID))
    for aid in (*apdu.FORBIDDEN_AIDS, apdu.INPUT_SUPPORT_AID[:8], bytes.fromhex("D392")):
        with pytest.raises(ForbiddenCommandError):
            apdu.check_allowed(apdu.select_aid(aid))


def test_apdu_der_total_length_forms() -> None:
    assert apdu.der_total_length(bytes.fromhex("30820385")) == 4 + 0x385
    assert apdu.der_total_length(bytes.fromhex("3081f0")) == 3 + 0xF0
    for bad in (b"", b"\x31\x82\x03\x85", b"\x30\x85\x00", b"\x30\x82\x7f\xff", b"\x30\x02"):
        with pytest.raises(MalformedResponseError):
            apdu.der_total_length(bad)


def test_apdu_tlv_parses_multibyte_tags_and_long_lengths() -> None:
    data = bytes.fromhex("ff2003df2100 0000 5f248180") + bytes(128) + b"\xff\xff\x00"
    items = apdu.parse_tlvs(data)
    assert [(t.tag, len(t.value)) for t in items] == [(0xFF20, 3), (0x5F24, 128)]


def test_apdu_pin_tries_from_status_word() -> None:
    assert apdu.pin_tries(0x63C2) == 2
    assert apdu.pin_tries(0x63C0) == 0
    assert apdu.pin_tries(0x9000) is None


# -- transport ----------------------------------------------------------


def test_transport_follows_61xx_with_get_response() -> None:
    session, sent = scripted(b"\x61\x03", b"abc\x61\x02", b"de\x90\x00")
    response = session.transmit(apdu.read_binary(0, 5))
    assert response.data == b"abcde" and response.ok
    assert sent[1:] == [apdu.get_response(3), apdu.get_response(2)]


def test_transport_resends_with_le_on_6cxx_but_never_verify() -> None:
    session, sent = scripted(b"\x6c\x08", b"12345678\x90\x00")
    assert session.transmit(apdu.GET_UID).data == b"12345678"
    assert sent[1] == bytes.fromhex("ffca000008")
    session, sent = scripted(b"\x6c\x04")
    assert session.transmit(apdu.verify(b"1234")).sw == 0x6C04
    assert len(sent) == 1


def test_transport_timeout_breaks_the_session() -> None:
    import threading

    release = threading.Event()

    def raw(command: bytes) -> bytes:
        release.wait(5)
        return b"\x90\x00"

    session = CardSession("slow", raw, timeout=0.05)
    with pytest.raises(CardTimeoutError):
        session.transmit(apdu.select_ef(1))
    release.set()
    with pytest.raises(CardTimeoutError):
        session.transmit(apdu.select_ef(1))
    session.close()


def test_transport_run_keeps_each_apdu_deadline() -> None:
    import threading
    import time

    release = threading.Event()
    calls: list[bytes] = []

    def raw(command: bytes) -> bytes:
        calls.append(command)
        if len(calls) == 3:
            release.wait(10)
        return b"\x90\x00"

    session = CardSession("slow", raw, timeout=0.1)
    started = time.monotonic()
    with pytest.raises(CardTimeoutError):
        session.run(lambda s: [s.transmit(apdu.select_ef(1)) for _ in range(5)])
    assert time.monotonic() - started < 5  # the 10 s hang was cut short
    assert len(calls) == 3
    release.set()
    session.close()


def test_transport_trace_log_masks_pin(caplog: pytest.LogCaptureFixture) -> None:
    session, _ = scripted(b"\x63\xc2")
    with caplog.at_level(logging.DEBUG, logger="cardreader.trace"):
        session.transmit(apdu.verify(b"4729"))
    text = " ".join(str(vars(r)) for r in caplog.records)
    assert "00 20 00 80 04 ** ** ** **" in text
    assert "4729" not in text and "34 37 32 39" not in text


def test_jpki_verify_sends_exactly_one_verify_and_wipes_nothing_else() -> None:
    session, sent = scripted(b"\x90\x00", b"\x63\xc3", b"\x63\xc2")
    with pytest.raises(CardReaderError) as caught:
        jpki.Jpki(session).verify_pin("0000")
    assert getattr(caught.value, "tries_left", None) == 2
    assert [c[:2] for c in sent] == [b"\x00\xa4", b"\x00\x20", b"\x00\x20"]
    assert sent[-1] == apdu.verify(b"0000")


# -- random answers -------------------------------------------------------

answers = st.lists(st.binary(max_size=300), min_size=1, max_size=12)


def _only_our_errors(flow: Callable[[CardSession], object], replies: list[bytes]) -> None:
    session, _ = scripted(*replies)
    with contextlib.suppress(CardReaderError):
        flow(session)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_apdu_parsers_raise_only_malformed(data: bytes) -> None:
    for parse in (apdu.split_response, apdu.der_total_length, apdu.parse_tlvs, apdu.token_label):
        with contextlib.suppress(MalformedResponseError):
            parse(data)


@settings(max_examples=200, deadline=None)
@given(answers)
def test_identify_random_answers_raise_only_our_errors(replies: list[bytes]) -> None:
    _only_our_errors(identify, replies)


def _read_cert(session: CardSession) -> bytes:
    card = jpki.Jpki(session, extended_reads=True)
    card.select()
    return card.read_auth_certificate()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300).map(lambda b: b + b"\x90\x00"), max_size=12), answers)
def test_jpki_read_random_answers_raise_only_our_errors(
    ok_replies: list[bytes], replies: list[bytes]
) -> None:
    _only_our_errors(_read_cert, [b"\x90\x00", b"\x90\x00", *ok_replies, *replies])


@settings(max_examples=200, deadline=None)
@given(answers)
def test_jpki_verify_random_answers_raise_only_our_errors(replies: list[bytes]) -> None:
    _only_our_errors(lambda s: jpki.Jpki(s).verify_pin("1234"), replies)
