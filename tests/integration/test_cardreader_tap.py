"""A check-in tap of a My Number Card through the real pcscd + vpcd: the
fewest APDUs and bytes, the j2 reference, and the j1 transition."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from cardreader import credential, errors
from cardreader.service import CardService, jpki_reference
from cardreader.sim.profiles import mynumber_card
from cardreader.sim.testpki import TestPki, create_test_pki
from kiosk.card_refs import known_refs_in
from kiosk.cards import CardFeed, CardSeen
from tests.harness.cards import inserted
from tests.harness.pcscd import READER_NAMES, Pcscd

KEY = bytes(range(32))
MAX_APDUS, MAX_BYTES = 4, 300


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return create_test_pki()


@pytest.fixture
def service(pcscd: Pcscd) -> Iterator[CardService]:
    with CardService(credential_key=KEY, reader_filter=READER_NAMES[0]) as s:
        yield s


def _legacy(pki: TestPki) -> str:
    return credential.certificate_reference(KEY, hashlib.sha256(pki.users["valid"].der).digest())


def test_tap_my_number_card_within_4_apdus_and_300_bytes(
    pcscd: Pcscd, pki: TestPki, service: CardService
) -> None:
    card = mynumber_card(pki)
    with inserted(card, pcscd):
        tap = service.tap()
        info = service.info()
    assert tap.apdu_count <= MAX_APDUS and tap.bytes_received <= MAX_BYTES
    assert card.bytes_read == tap.bytes_received + info.bytes_received
    # The same reference as the full read, from about an eighth of the bytes.
    assert tap.reference == info.reference == jpki_reference(KEY, pki.users["valid"].der)
    assert tap.reference is not None and tap.reference.startswith("j2-")
    assert info.bytes_received > len(pki.users["valid"].der)
    assert tap.certificate is None and tap.alternate is None
    assert info.alternate == _legacy(pki)


def test_tap_card_without_short_ef_reads_falls_back_to_select(
    pcscd: Pcscd, pki: TestPki, service: CardService
) -> None:
    card = mynumber_card(pki)
    card.short_ef_ids = False
    with inserted(card, pcscd):
        tap = service.tap()
    assert tap.reference == jpki_reference(KEY, pki.users["valid"].der)
    assert tap.bytes_received <= MAX_BYTES


def test_tap_legacy_enrolled_card_still_matches_by_its_j1_reference(
    pcscd: Pcscd, pki: TestPki, tmp_path: Path
) -> None:
    store = tmp_path / "device.db"
    with sqlite3.connect(store) as conn:
        conn.execute(
            "CREATE TABLE reservation_credentials (credential_ref TEXT, reservation_id TEXT)"
        )
        conn.execute("INSERT INTO reservation_credentials VALUES (?, 'r1')", (_legacy(pki),))
    known = known_refs_in(store)
    card = mynumber_card(pki)
    with (
        CardService(credential_key=KEY, reader_filter=READER_NAMES[0], known_refs=known) as svc,
        inserted(card, pcscd),
    ):
        tap = svc.tap()
        # After the member re-enrolled the card (central stores its j2
        # reference and publishes it), a tap is cheap again.
        with sqlite3.connect(store) as conn:
            conn.execute("INSERT INTO reservation_credentials VALUES (?, 'r1')", (tap.alternate,))
        again = svc.tap()
    assert tap.reference == _legacy(pki)
    assert tap.alternate == jpki_reference(KEY, pki.users["valid"].der)
    assert again.reference == tap.alternate and again.alternate is None
    assert again.apdu_count <= MAX_APDUS and again.bytes_received <= MAX_BYTES


def test_tap_unknown_card_with_transition_on_answers_j2(
    pcscd: Pcscd, pki: TestPki, tmp_path: Path
) -> None:
    # No cache file at all: the predicate says "unknown" (and logs), never raises.
    known = known_refs_in(tmp_path / "missing.db")
    with (
        CardService(credential_key=KEY, reader_filter=READER_NAMES[0], known_refs=known) as svc,
        inserted(mynumber_card(pki), pcscd),
    ):
        tap = svc.tap()
    assert tap.reference == jpki_reference(KEY, pki.users["valid"].der)
    assert tap.alternate is None


def test_tap_card_with_a_garbage_certificate_head_is_unknown_and_logged(
    pcscd: Pcscd, pki: TestPki, caplog: pytest.LogCaptureFixture
) -> None:
    card = mynumber_card(pki)
    # An issuer that claims 4 KB: refused from the first block, not read.
    card.cert_der = bytes.fromhex("308206003082050002010530003082100031") + bytes(1500)
    with CardService(credential_key=KEY, reader_filter=READER_NAMES[0]) as svc:
        feed = CardFeed(svc, lambda _seen: None)
        with inserted(card, pcscd), caplog.at_level(logging.INFO, logger="kiosk.cards"):
            with pytest.raises(errors.CertificateError, match="not a certificate"):
                svc.tap()
            seen = feed.identify(READER_NAMES[0])
    # The person sees "card not recognised"; the log says why, without the card.
    assert seen == CardSeen(None, "unknown")
    assert "card certificate not usable" in caplog.text
    assert card.bytes_read <= 2 * MAX_BYTES
