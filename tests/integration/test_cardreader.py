"""The card reader library through the real pcscd + vpcd with our virtual cards."""

from __future__ import annotations

import asyncio
import io
import logging
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from cardreader import apdu, certs, credential, errors, jpki
from cardreader.identify import CardKind, identify
from cardreader.pcsc import Pcsc
from cardreader.service import CardService
from cardreader.sim.cards import UidCard, UnknownCard
from cardreader.sim.faulty import FaultyCard
from cardreader.sim.mynumber import MyNumberCard
from cardreader.sim.profiles import DEMO_FELICA_IDM, DEMO_MIFARE_UID, build_card, mynumber_card
from cardreader.sim.testpki import TestPki, create_test_pki
from cardreader.sim.vpcd import VpcdLink
from cardreader.watch import CardEvent, CardWatcher
from foundation.logs import configure_logging
from tests.harness.cards import SLOT_WAIT_S, card_present, inserted
from tests.harness.pcscd import READER_NAMES, Pcscd
from tests.harness.services import wait_until

PIN = "4729"  # distinctive digits, searched for in the logs
CHALLENGE = bytes.fromhex("6b696f736b2d6e6f6e63652d3031")


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return create_test_pki()


@pytest.fixture
def pcsc(pcscd: Pcscd) -> Iterator[Pcsc]:
    with Pcsc(apdu_timeout=5.0) as p:
        yield p


@pytest.fixture
def service(pcscd: Pcscd) -> Iterator[CardService]:
    with CardService(credential_key=bytes(range(32)), reader_filter=READER_NAMES[0]) as s:
        yield s


def _card(pki: TestPki, tmp_path: Path, **kwargs: object) -> MyNumberCard:
    return mynumber_card(pki, pin=PIN, state_path=tmp_path / "pin.json", **kwargs)  # type: ignore[arg-type]


def _next(events: queue.Queue[CardEvent], kind: str, reader: str = READER_NAMES[0]) -> CardEvent:
    """The next event of ``kind`` for ``reader`` (others are skipped), 10 s deadline."""
    while True:
        event = events.get(timeout=10)
        if event.kind == kind and (not event.reader or event.reader == reader):
            return event


# -- identification -----------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "kind", "uid"),
    [
        ("mynumber", CardKind.MYNUMBER, None),
        ("felica", CardKind.FELICA, DEMO_FELICA_IDM),
        ("mifare", CardKind.MIFARE, DEMO_MIFARE_UID),
        ("unknown", CardKind.UNKNOWN, None),
    ],
)
def test_identify_each_card_kind(
    pcscd: Pcscd, pcsc: Pcsc, pki: TestPki, *, profile: str, kind: CardKind, uid: bytes | None
) -> None:
    card = build_card(profile, pki=pki)
    with inserted(card, pcscd) as (_, reader), pcsc.connect(reader) as session:
        found = identify(session)
    assert found.kind is kind
    assert found.uid == uid
    if kind is CardKind.MYNUMBER:
        assert found.token_label == "JPKIAPICCTOKEN2"
        # The Type B PUPI the card also offers is random: never used.
        assert found.uid is None


def test_identify_member_card_reference_is_opaque(pcscd: Pcscd, service: CardService) -> None:
    with inserted(UidCard(uid=DEMO_FELICA_IDM), pcscd):
        info = service.info()
    assert info.kind is CardKind.FELICA
    assert info.reference == credential.member_reference(bytes(range(32)), DEMO_FELICA_IDM)
    assert DEMO_FELICA_IDM.hex() not in str(info.to_json()).lower()


# -- JPKI ---------------------------------------------------------------


def test_jpki_auth_signature_verifies_against_certificate(
    pcscd: Pcscd, pcsc: Pcsc, pki: TestPki, tmp_path: Path
) -> None:
    with inserted(_card(pki, tmp_path), pcscd) as (_, reader):
        result = jpki.authenticate(pcsc, reader, PIN, CHALLENGE)
        with pcsc.connect(reader) as session:
            card = jpki.Jpki(session)
            card.select()
            ca_der = card.read_ca_certificate()
    cert = x509.load_der_x509_certificate(result.certificate)
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048
    key.verify(result.signature, CHALLENGE, padding.PKCS1v15(), hashes.SHA256())
    assert cert.public_bytes(serialization.Encoding.DER) == pki.users["valid"].der
    # The CA certificate from EF 000B issued the user certificate.
    ca = x509.load_der_x509_certificate(ca_der)
    cert.verify_directly_issued_by(ca)
    assert result.info.issuer == ca.subject.rfc4514_string()
    assert not result.info.expired
    assert certs.verify_signature(result.certificate, CHALLENGE, result.signature)
    assert not certs.verify_signature(result.certificate, CHALLENGE + b"x", result.signature)


def test_jpki_wrong_pin_twice_then_right_resets_counter(
    pcscd: Pcscd, pcsc: Pcsc, pki: TestPki, tmp_path: Path
) -> None:
    card = _card(pki, tmp_path)
    with inserted(card, pcscd) as (_, reader):
        for left in (2, 1):
            with pytest.raises(errors.WrongPinError) as wrong:
                jpki.authenticate(pcsc, reader, "0000", CHALLENGE)
            assert wrong.value.tries_left == left
        assert "One more wrong PIN blocks" in str(wrong.value)
        result = jpki.authenticate(pcsc, reader, PIN, CHALLENGE)
        with pcsc.connect(reader) as session:
            j = jpki.Jpki(session)
            j.select()
            # 3, not None: the card was powered down, the PIN is no longer verified.
            assert j.pin_tries_left() == 3
    assert card.verify_attempts == 3
    assert card.pin_state.tries_left == 3
    assert (tmp_path / "pin.json").read_text() == '{"tries_left": 3}'
    assert certs.verify_signature(result.certificate, CHALLENGE, result.signature)


def test_jpki_three_wrong_pins_block_and_no_further_verify_is_sent(
    pcscd: Pcscd, pcsc: Pcsc, pki: TestPki, tmp_path: Path
) -> None:
    card = _card(pki, tmp_path)
    with inserted(card, pcscd) as (_, reader):
        for _ in range(2):
            with pytest.raises(errors.WrongPinError):
                jpki.authenticate(pcsc, reader, "1111", CHALLENGE)
        with pytest.raises(errors.PinBlockedError):
            jpki.authenticate(pcsc, reader, "1111", CHALLENGE)
        assert card.verify_attempts == 3
        # Even the right PIN is not sent to a blocked card.
        with pytest.raises(errors.PinBlockedError):
            jpki.authenticate(pcsc, reader, PIN, CHALLENGE)
    assert card.verify_attempts == 3
    # The counter is persisted: a fresh card object from the same state is blocked.
    again = _card(pki, tmp_path)
    with inserted(again, pcscd) as (_, reader), pytest.raises(errors.PinBlockedError):
        jpki.authenticate(pcsc, reader, PIN, CHALLENGE)
    assert again.verify_attempts == 0


def test_jpki_pin_format_checked_locally(
    pcscd: Pcscd, pcsc: Pcsc, pki: TestPki, tmp_path: Path
) -> None:
    card = _card(pki, tmp_path)
    with inserted(card, pcscd) as (link, reader):
        for bad in ("123", "12345", "12a4", "１２３４", ""):
            with pytest.raises(errors.PinFormatError):
                jpki.authenticate(pcsc, reader, bad, CHALLENGE)
        assert link.apdu_count == 0
    assert card.verify_attempts == 0


def test_jpki_tries_query_consumes_nothing(
    pcscd: Pcscd, pcsc: Pcsc, pki: TestPki, tmp_path: Path
) -> None:
    card = _card(pki, tmp_path, tries=2)
    with inserted(card, pcscd) as (_, reader), pcsc.connect(reader) as session:
        j = jpki.Jpki(session)
        j.select()
        assert [j.pin_tries_left() for _ in range(3)] == [2, 2, 2]
    assert card.verify_attempts == 0


def test_jpki_sign_without_pin_is_refused(
    pcscd: Pcscd, pcsc: Pcsc, pki: TestPki, tmp_path: Path
) -> None:
    with inserted(_card(pki, tmp_path), pcscd) as (_, reader), pcsc.connect(reader) as session:
        j = jpki.Jpki(session)
        j.select()
        with pytest.raises(errors.SecurityStatusError):
            j.sign(CHALLENGE)


def test_jpki_signing_certificate_refused_without_password(
    pcscd: Pcscd, pcsc: Pcsc, pki: TestPki
) -> None:
    with inserted(mynumber_card(pki), pcscd) as (_, reader), pcsc.connect(reader) as session:
        jpki.Jpki(session).select()
        assert session.transmit(apdu.select_ef(0x0001)).ok
        assert session.transmit(apdu.read_binary(0, 4)).sw == apdu.SW_SECURITY


def test_jpki_expired_certificate_reported_before_pin(
    pcscd: Pcscd, service: CardService, pki: TestPki, tmp_path: Path
) -> None:
    card = _card(pki, tmp_path, variant="expired")
    with inserted(card, pcscd):
        info = service.info()
        assert info.certificate is not None and info.certificate.expired
        with pytest.raises(errors.CertificateExpiredError):
            service.authenticate(PIN, CHALLENGE)
    assert card.verify_attempts == 0


def test_jpki_revoked_certificate_found_in_crl(
    pcscd: Pcscd, service: CardService, pki: TestPki, tmp_path: Path
) -> None:
    crl = pki.crl.public_bytes(serialization.Encoding.PEM)
    with inserted(_card(pki, tmp_path, variant="revoked"), pcscd):
        outcome = service.authenticate(PIN, CHALLENGE)
    with pytest.raises(errors.CertificateRevokedError):
        certs.check_not_revoked(outcome.result.certificate, crl)
    certs.check_not_revoked(pki.users["valid"].der, crl)


def test_jpki_extended_read_and_fallback_give_same_certificate(
    pcscd: Pcscd, pki: TestPki, tmp_path: Path
) -> None:
    der = pki.users["valid"].der
    counts = {}
    for extended_card in (True, False):
        card = _card(pki, tmp_path, extended_length=extended_card)
        with (
            Pcsc() as pcsc,
            inserted(card, pcscd) as (_, reader),
            pcsc.connect(reader) as session,
        ):
            j = jpki.Jpki(session, extended_reads=True)
            j.select()
            assert j.read_auth_certificate() == der
            counts[extended_card] = session.apdu_count
    # select AP, select EF, header, one extended read -- or the refusal + chunks.
    assert counts[True] == 4
    assert counts[False] == 4 + -(-(len(der) - 4) // 256)


# -- bad cards and removal ----------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("garbage", errors.MalformedResponseError),
        ("truncated", errors.MalformedResponseError),
        ("wrong-sw", errors.StatusWordError),
        ("remove-mid-read", errors.CardRemovedError),
    ],
)
def test_faulty_card_gives_typed_error(
    pcscd: Pcscd, service: CardService, pki: TestPki, fault: str, error: type[Exception]
) -> None:
    card = FaultyCard(mynumber_card(pki), mode=fault)
    link = VpcdLink(card, port=pcscd.ports[0])
    link.insert()
    try:
        wait_until(lambda: card_present(READER_NAMES[0]), SLOT_WAIT_S, "card present")
        with pytest.raises(error):
            service.info()
    finally:
        link.remove()
        wait_until(lambda: not card_present(READER_NAMES[0]), SLOT_WAIT_S, "card gone")


def test_removal_mid_read_then_watcher_identifies_next_card(
    pcscd: Pcscd, service: CardService, pki: TestPki
) -> None:
    events: queue.Queue[CardEvent] = queue.Queue()
    with service.watch(events) as watcher:
        card = FaultyCard(mynumber_card(pki), mode="remove-mid-read")
        faulty = VpcdLink(card, port=pcscd.ports[0])
        faulty.insert()
        _next(events, "inserted")
        with pytest.raises(errors.CardRemovedError):
            service.info()
        _next(events, "removed")
        faulty.remove()
        with inserted(UidCard(uid=DEMO_MIFARE_UID), pcscd):
            event = _next(events, "inserted")
            assert service.info(event.reader).kind is CardKind.MIFARE
        _next(events, "removed")
        assert watcher.dropped == 0


@pytest.mark.parametrize("path", ["per-apdu hand-off", "whole flow on the worker"])
def test_slow_card_times_out_per_apdu(pcscd: Pcscd, pki: TestPki, path: str) -> None:
    card = FaultyCard(mynumber_card(pki), mode="slow", delay=10)
    link = VpcdLink(card, port=pcscd.ports[0])
    link.insert()
    try:
        wait_until(lambda: card_present(READER_NAMES[0]), SLOT_WAIT_S, "card present")
        pcsc = Pcsc(apdu_timeout=0.3)
        session = pcsc.connect(READER_NAMES[0])
        j = jpki.Jpki(session)
        with pytest.raises(errors.CardTimeoutError):
            if path == "per-apdu hand-off":
                j.select()  # SELECT answers at once; READ BINARY does not
                j.read_auth_certificate()
            else:
                session.run(identify)  # identify reads the token label
        with pytest.raises(errors.CardTimeoutError):
            session.transmit(apdu.select_ef(0x000A))  # the session is gone

        # Closing does not wait for the transmit that still hangs (10 s).
        def close_both() -> None:
            session.close()
            pcsc.close()

        closer = threading.Thread(target=close_both)
        closer.start()
        closer.join(3)
        assert not closer.is_alive()
    finally:
        card.release()
        link.remove()
        wait_until(lambda: not card_present(READER_NAMES[0]), SLOT_WAIT_S, "card gone")


def test_unknown_card_and_missing_reader_errors(pcscd: Pcscd, pki: TestPki) -> None:
    with (
        CardService(reader_filter="No Such Reader") as service,
        pytest.raises(errors.NoReaderError),
    ):
        service.info()
    with Pcsc() as pcsc:
        with pytest.raises(errors.NoCardError):
            pcsc.connect(READER_NAMES[1])
        with (
            inserted(UnknownCard(), pcscd) as (_, reader),
            pcsc.connect(reader) as session,
            pytest.raises(errors.NotMyNumberCardError),
        ):
            jpki.Jpki(session).select()


def test_exclusive_connection_keeps_others_out(
    pcscd: Pcscd, pcsc: Pcsc, pki: TestPki, tmp_path: Path
) -> None:
    with inserted(_card(pki, tmp_path), pcscd) as (_, reader):
        with (
            pcsc.connect(reader, exclusive=True),
            Pcsc() as other,
            pytest.raises(errors.CardBusyError),
        ):
            other.connect(reader)
        with Pcsc() as other, other.connect(reader):
            pass


# -- the forbidden applications and the logs ------------------------------


def test_trace_never_selects_my_number_aps_and_never_logs_pin(
    pcscd: Pcscd, pki: TestPki, tmp_path: Path
) -> None:
    stream = io.StringIO()
    handler = configure_logging("DEBUG", stream)
    trace_logger = logging.getLogger("cardreader.trace")
    trace_logger.setLevel(logging.DEBUG)
    card = _card(pki, tmp_path)
    log_start = len(pcscd.log_text())
    try:
        with CardService(reader_filter=READER_NAMES[0]) as service, inserted(card, pcscd):
            service.tap()
            service.info()
            with pytest.raises(errors.WrongPinError):
                service.authenticate("9999", CHALLENGE)
            service.authenticate(PIN, CHALLENGE)
            with (
                pytest.raises(errors.ForbiddenCommandError),
                service.pcsc.connect(READER_NAMES[0]) as session,
            ):
                # Even a prefix of the input-support AID is refused (JICSAP prefix select).
                session.transmit(apdu.select_aid(apdu.INPUT_SUPPORT_AID[:8]))
    finally:
        logging.getLogger().removeHandler(handler)
        trace_logger.setLevel(logging.NOTSET)
    ours = stream.getvalue()
    assert '"c": "00 20 00 80 04 ** ** ** **"' in ours  # VERIFY traced, data masked
    assert "80 2A 00 80" in ours
    # Every application the card was asked to select is the JPKI AP.
    assert card.selected_aids and set(card.selected_aids) == {apdu.JPKI_AID}
    # The signing side (certificate 0001 with name and address, its CA 0002)
    # is never read, though this card has it; nor is its password tried.
    assert card.sign_cert_der is not None
    assert set(card.files_read) <= {0x0006, 0x000A, 0x000B}
    assert card.sign_pin_state.tries_left == 5
    # pcscd's own APDU log (-a) shows the same on the wire.
    wire = pcscd.log_text()[log_start:].upper()
    for aid in apdu.FORBIDDEN_AIDS:
        assert aid.hex(" ").upper() not in wire
        assert aid[:8].hex(" ").upper() not in wire
    assert "D3 92 F0 00 26 01 00 00 00 01" in wire
    # Nor was the signing certificate (EF 0001) or its CA (0002) selected or
    # read by short EF identifier; the tap's own short-EF read is there.
    for command in ("00 A4 02 0C 02 00 01", "00 A4 02 0C 02 00 02", "00 B0 81 00", "00 B0 82 00"):
        assert command not in wire
    assert "00 B0 8A 00 C0" in wire
    pin_forms = (PIN, PIN.encode().hex(), PIN.encode().hex(" "), "52, 55, 50, 57")
    for form in pin_forms:
        assert form not in ours.lower()


# -- the watcher ----------------------------------------------------------


def test_watcher_delivers_insert_and_remove_to_queue(pcscd: Pcscd) -> None:
    events: queue.Queue[CardEvent] = queue.Queue()
    with CardWatcher(events, reader_filter=READER_NAMES[0]):
        assert _next(events, "reader_added").reader == READER_NAMES[0]
        with inserted(UidCard(uid=DEMO_FELICA_IDM), pcscd):
            assert _next(events, "inserted").atr
        _next(events, "removed")


def test_watcher_hands_events_to_asyncio_loop(pcscd: Pcscd) -> None:
    seen: list[tuple[str, bool]] = []

    async def run() -> None:
        loop = asyncio.get_running_loop()
        loop_thread = threading.current_thread()
        arrived = {"inserted": asyncio.Event(), "removed": asyncio.Event()}

        def on_event(event: CardEvent) -> None:
            seen.append((event.kind, threading.current_thread() is loop_thread))
            if event.kind in arrived:
                arrived[event.kind].set()

        watcher = CardWatcher.for_asyncio(loop, on_event, reader_filter=READER_NAMES[0])
        watcher.start()
        try:
            link = VpcdLink(UidCard(uid=DEMO_FELICA_IDM), port=pcscd.ports[0])
            await asyncio.to_thread(link.insert)
            await asyncio.wait_for(arrived["inserted"].wait(), 10)
            await asyncio.to_thread(link.remove)
            await asyncio.wait_for(arrived["removed"].wait(), 10)
        finally:
            await asyncio.to_thread(watcher.close)

    asyncio.run(run())
    assert ("inserted", True) in seen and ("removed", True) in seen
    assert all(on_loop for _, on_loop in seen)


def test_watcher_survives_pcscd_restart(pcscd: Pcscd, pki: TestPki) -> None:
    events: queue.Queue[CardEvent] = queue.Queue()
    with CardWatcher(events, reader_filter=READER_NAMES[0], retry_seconds=0.2), Pcsc() as pcsc:
        _next(events, "reader_added")
        with inserted(UidCard(uid=DEMO_FELICA_IDM), pcscd):
            _next(events, "inserted")
            pcscd.restart()
            # The readers vanish with the daemon (as when a reader is unplugged).
            _next(events, "removed")
            _next(events, "reader_removed")
            _next(events, "service_lost")
            _next(events, "service_restored")
            _next(events, "reader_added")
        # The same Pcsc object recovers its context, and the watcher sees new cards.
        with inserted(UidCard(uid=DEMO_MIFARE_UID), pcscd) as (_, reader):
            _next(events, "inserted")
            with pcsc.connect(reader) as session:
                assert identify(session).kind is CardKind.MIFARE
