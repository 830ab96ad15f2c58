"""Card feed for check-in through real pcscd + vpcd: each card kind becomes
the right CardSeen (opaque reference or why there is none), handed over from
the feed's thread."""

from __future__ import annotations

import queue

from cardreader.service import CardService
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
