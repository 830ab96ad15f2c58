"""Card reader benchmark: our layer against raw pyscard, through pcscd + vpcd.

Starts a private pcscd with the vpcd driver (as the tests do), plays our
virtual cards into it and measures, in the same run:

* the JPKI flow (connect exclusive, select AP, read the user-auth
  certificate, PIN tries, VERIFY, sign, power down) with our layer
  (``jpki.authenticate``) and with raw pyscard sending the same APDUs;
* a member-card UID read (connect, ``FF CA 00 00 00``, disconnect), both ways;
* a single APDU on an open connection: raw pyscard, our session without a
  timeout, our session with the per-APDU timeout (worker thread);
* the APDU count of each flow (counted by the virtual card);
* insertion-to-identified latency: vpcd connect -> watcher event (pcscd's
  own polling, ~400 ms period) and watcher event -> card identified (ours).

Run: ``python bench/cardreader.py`` (about 30 s) or ``--full`` (more rounds).
"""

from __future__ import annotations

import argparse
import os
import queue
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cardreader import apdu, jpki  # noqa: E402
from cardreader.identify import identify  # noqa: E402
from cardreader.pcsc import CardSession, Pcsc  # noqa: E402
from cardreader.sim.cards import UidCard  # noqa: E402
from cardreader.sim.mynumber import MyNumberCard  # noqa: E402
from cardreader.sim.profiles import DEMO_FELICA_IDM, mynumber_card  # noqa: E402
from cardreader.sim.vpcd import VpcdLink  # noqa: E402
from cardreader.testpki import create_test_pki  # noqa: E402
from cardreader.watch import CardEvent, CardWatcher  # noqa: E402
from tests.harness.pcscd import READER_NAMES, Pcscd  # noqa: E402
from tests.harness.services import wait_until  # noqa: E402

PIN = "1234"
CHALLENGE = b"bench-challenge-0001"


_READERS: dict[str, object] = {}


def raw_connection(reader: str, exclusive: bool) -> object:
    """pyscard's high-level connection; the reader object is looked up once."""
    from smartcard.scard import SCARD_SHARE_EXCLUSIVE, SCARD_SHARE_SHARED
    from smartcard.System import readers

    if reader not in _READERS:
        _READERS[reader] = next(r for r in readers() if str(r) == reader)
    connection = _READERS[reader].createConnection()  # type: ignore[attr-defined]
    connection.connect(mode=SCARD_SHARE_EXCLUSIVE if exclusive else SCARD_SHARE_SHARED)
    return connection


def raw_jpki(reader: str, cert_len: int) -> None:
    """The same APDUs as jpki.authenticate, sent with pyscard's CardConnection."""
    c = raw_connection(reader, exclusive=True)
    tx = c.transmit  # type: ignore[attr-defined]

    def ok(command: bytes) -> list[int]:
        data, sw1, sw2 = tx(list(command))
        assert (sw1, sw2) == (0x90, 0x00), f"{command.hex()} -> {sw1:02X}{sw2:02X}"
        return list(data)

    ok(apdu.select_aid(apdu.JPKI_AID))
    ok(apdu.select_ef(apdu.EF_AUTH_CERT))
    cert = ok(apdu.read_binary(0, 4))
    while len(cert) < cert_len:
        cert += ok(apdu.read_binary(len(cert), min(256, cert_len - len(cert))))
    ok(apdu.select_ef(apdu.EF_AUTH_PIN))
    tx(list(apdu.verify_status()))
    ok(apdu.verify(PIN.encode()))
    ok(apdu.select_ef(apdu.EF_AUTH_KEY))
    ok(apdu.compute_signature(apdu.sha256_digest_info(CHALLENGE)))
    c.disconnect()  # type: ignore[attr-defined]


def raw_read(reader: str, cert_len: int) -> None:
    """Connect, select, read the certificate, PIN tries: raw pyscard."""
    c = raw_connection(reader, exclusive=False)
    tx = c.transmit  # type: ignore[attr-defined]
    tx(list(apdu.select_aid(apdu.JPKI_AID)))
    tx(list(apdu.select_ef(apdu.EF_AUTH_CERT)))
    cert, _, _ = tx(list(apdu.read_binary(0, 4)))
    while len(cert) < cert_len:
        data, _, _ = tx(list(apdu.read_binary(len(cert), min(256, cert_len - len(cert)))))
        cert += data
    tx(list(apdu.select_ef(apdu.EF_AUTH_PIN)))
    tx(list(apdu.verify_status()))
    c.disconnect()  # type: ignore[attr-defined]


def ours_read(pcsc: Pcsc, reader: str) -> None:
    def flow(session: CardSession) -> None:
        card = jpki.Jpki(session)
        card.select()
        card.read_auth_certificate()
        card.pin_tries_left()

    with pcsc.connect(reader) as session:
        session.run(flow)


def ours_jpki(pcsc: Pcsc, reader: str) -> None:
    jpki.authenticate(pcsc, reader, PIN, CHALLENGE)


def raw_uid(reader: str) -> None:
    c = raw_connection(reader, exclusive=False)
    data, sw1, _ = c.transmit(list(apdu.GET_UID))  # type: ignore[attr-defined]
    assert sw1 == 0x90 and data
    c.disconnect()  # type: ignore[attr-defined]


def ours_uid(pcsc: Pcsc, reader: str) -> None:
    with pcsc.connect(reader) as session:
        assert session.run(lambda s: s.transmit(apdu.GET_UID)).ok


def timed(fn: Callable[[], None], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def compare(name: str, raw: Callable[[], None], ours: Callable[[], None], rounds: int) -> None:
    """Interleave the two so machine noise hits both alike; report medians."""
    raw_ms: list[float] = []
    ours_ms: list[float] = []
    raw(), ours()  # warm up
    for _ in range(rounds):
        raw_ms += timed(raw, 1)
        ours_ms += timed(ours, 1)
    r, o = statistics.median(raw_ms), statistics.median(ours_ms)
    print(f"  {name:<34} raw {r:8.3f} ms   ours {o:8.3f} ms   overhead {100 * (o / r - 1):+6.1f} %")


def count_apdus(link: VpcdLink, fn: Callable[[], None]) -> int:
    before = link.apdu_count
    fn()
    return link.apdu_count - before


def bench_flows(pcscd: Pcscd, rounds: int) -> None:
    pki = create_test_pki()
    reader = READER_NAMES[0]
    card: MyNumberCard = mynumber_card(pki, pin=PIN)
    cert_len = len(card.cert_der)
    print(f"flows (median of {rounds}, interleaved; certificate {cert_len} bytes)")
    with Pcsc() as pcsc:
        link = VpcdLink(card, port=pcscd.ports[0])
        link.insert()
        wait_until(lambda: _present(pcsc, reader), 5, "card present")
        compare("JPKI read flow (no PIN)", lambda: raw_read(reader, cert_len),
                lambda: ours_read(pcsc, reader), rounds)  # fmt: skip
        compare("JPKI auth flow (incl. sign)", lambda: raw_jpki(reader, cert_len),
                lambda: ours_jpki(pcsc, reader), rounds)  # fmt: skip
        print(f"  APDUs per JPKI read flow: raw {count_apdus(link, lambda: raw_read(reader, cert_len))}, "
              f"ours {count_apdus(link, lambda: ours_read(pcsc, reader))}")  # fmt: skip
        n_raw = count_apdus(link, lambda: raw_jpki(reader, cert_len))
        n_ours = count_apdus(link, lambda: ours_jpki(pcsc, reader))
        print(f"  APDUs per JPKI auth flow: raw {n_raw}, ours {n_ours}")

        def ident() -> None:
            with pcsc.connect(reader) as s:
                identify(s)

        print(f"  APDUs to identify a My Number Card: {count_apdus(link, ident)}")
        link.remove()

        link = VpcdLink(UidCard(uid=DEMO_FELICA_IDM), port=pcscd.ports[0])
        link.insert()
        wait_until(lambda: _present(pcsc, reader), 5, "card present")
        compare("member UID read flow", lambda: raw_uid(reader),
                lambda: ours_uid(pcsc, reader), rounds * 4)  # fmt: skip
        print(f"  APDUs per UID read: raw {count_apdus(link, lambda: raw_uid(reader))}, "
              f"ours {count_apdus(link, lambda: ours_uid(pcsc, reader))}")  # fmt: skip
        print(f"  APDUs to identify a member card: {count_apdus(link, ident)}")
        bench_single_apdu(pcsc, reader, rounds * 20)
        link.remove()


def bench_single_apdu(pcsc: Pcsc, reader: str, rounds: int) -> None:
    raw = raw_connection(reader, exclusive=False)
    command = list(apdu.GET_UID)
    timed_session = pcsc.connect(reader)
    plain = Pcsc(apdu_timeout=None)
    untimed_session = plain.connect(reader)
    compare("one APDU, session without timeout",
            lambda: raw.transmit(command),  # type: ignore[attr-defined]
            lambda: untimed_session.transmit(apdu.GET_UID), rounds)  # fmt: skip
    compare("one APDU, session with timeout",
            lambda: raw.transmit(command),  # type: ignore[attr-defined]
            lambda: timed_session.transmit(apdu.GET_UID), rounds)  # fmt: skip
    # Leave the card powered: the other connections share it.
    untimed_session.close(unpower=False)
    timed_session.close(unpower=False)
    plain.close()
    raw.disconnect()  # type: ignore[attr-defined]


def _present(pcsc: Pcsc, reader: str) -> bool:
    from cardreader.errors import NoCardError

    try:
        pcsc.connect(reader).close(unpower=False)
    except NoCardError:
        return False
    return True


def bench_latency(pcscd: Pcscd, cycles: int) -> None:
    reader = READER_NAMES[0]
    events: queue.Queue[CardEvent] = queue.Queue()
    seen_ms, ident_ms = [], []
    with Pcsc() as pcsc, CardWatcher(events, reader_filter=reader, poll_seconds=2):
        _wait_for(events, "reader_added")
        for _ in range(cycles):
            link = VpcdLink(UidCard(uid=DEMO_FELICA_IDM), port=pcscd.ports[0])
            start = time.monotonic()
            link.insert()
            event = _wait_for(events, "inserted")
            with pcsc.connect(reader) as session:
                identify(session)
            done = time.monotonic()
            seen_ms.append((event.at - start) * 1000)
            ident_ms.append((done - event.at) * 1000)
            link.remove()
            _wait_for(events, "removed")
    print(f"insertion to identified (member card, {cycles} cycles)")
    for name, values in (("insert -> watcher event (pcscd polling)", seen_ms),
                         ("watcher event -> identified (ours)", ident_ms)):  # fmt: skip
        print(f"  {name:<42} median {statistics.median(values):7.1f} ms   "
              f"min {min(values):7.1f}   max {max(values):7.1f}")  # fmt: skip


def _wait_for(events: queue.Queue[CardEvent], kind: str) -> CardEvent:
    while True:
        event = events.get(timeout=10)
        if event.kind == kind:
            return event


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="more rounds (about 3 minutes)")
    args = parser.parse_args()
    rounds, cycles = (200, 50) if args.full else (30, 12)
    with tempfile.TemporaryDirectory() as tmp:
        pcscd = Pcscd(Path(tmp), apdu_log=False)
        pcscd.start()
        os.environ.update(pcscd.env)
        try:
            print(f"pcscd + vpcd, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
            bench_flows(pcscd, rounds)
            bench_latency(pcscd, cycles)
        finally:
            pcscd.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
