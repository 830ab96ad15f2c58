"""Card feed for check-in through real pcscd + vpcd: each card kind becomes
the right CardSeen (opaque reference or why there is none), handed over from
the feed's thread."""

from __future__ import annotations

import hashlib
import queue

from cardreader import credential
from cardreader.service import CardService, jpki_reference
from cardreader.sim.cards import UidCard, UnknownCard
from cardreader.sim.profiles import DEMO_FELICA_IDM, mynumber_card
from cardreader.sim.testpki import create_test_pki
from kiosk.cards import CardFeed, CardSeen
from tests.harness.cards import inserted
from tests.harness.pcscd import Pcscd


def test_kiosk_card_feed_identifies_each_kind(pcscd: Pcscd) -> None:
    seen: queue.Queue[CardSeen] = queue.Queue()
    feed = CardFeed(CardService(), seen.put).start()
    try:
        with inserted(UidCard(uid=DEMO_FELICA_IDM), pcscd):
            member = seen.get(timeout=5)
        with inserted(mynumber_card(create_test_pki()), pcscd):
            mynumber = seen.get(timeout=5)
        with inserted(UnknownCard(), pcscd):
            unknown = seen.get(timeout=5)
    finally:
        feed.close()
    assert member.kind == "member" and member.ref is not None and member.ref.startswith("m1-")
    assert DEMO_FELICA_IDM.hex() not in member.ref
    assert (
        mynumber.kind == "mynumber" and mynumber.ref is not None and mynumber.ref.startswith("j2-")
    )
    assert unknown == CardSeen(None, "unknown")
    assert feed.last_latency is not None and feed.last_latency < 2.0


def test_kiosk_card_feed_legacy_card_carries_its_current_reference(pcscd: Pcscd) -> None:
    # A My Number Card enrolled under its legacy j1 reference, which the
    # device holds: check-in gets j1 (the door opens), enrolment gets j2.
    pki = create_test_pki()
    der = pki.users["valid"].der
    legacy = credential.certificate_reference(credential.DEMO_KEY, hashlib.sha256(der).digest())
    service = CardService(known_refs=lambda ref: ref == legacy)
    seen: queue.Queue[CardSeen] = queue.Queue()
    feed = CardFeed(service, seen.put).start()
    try:
        with inserted(mynumber_card(pki), pcscd):
            card = seen.get(timeout=5)
    finally:
        feed.close()
    current = jpki_reference(credential.DEMO_KEY, der)
    assert card == CardSeen(legacy, "mynumber", current_ref=current)
    assert card.enrol_ref == current and current.startswith("j2-")
