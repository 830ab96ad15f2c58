"""Card reader benchmark: our layer against raw pyscard, through pcscd + vpcd.

Starts a private pcscd with the vpcd driver (as the tests do) and two
virtual cards, each in its own process (``python -m cardreader sim``), like
a real card outside this process: a My Number Card in slot 0, a FeliCa
member card in slot 1. It measures in the same run, interleaved so machine
noise hits both sides alike:

* the JPKI read flow (connect, select AP, read the user-auth certificate,
  PIN tries, disconnect) and the JPKI auth flow (exclusive connect, the
  same plus VERIFY and sign, power down): ``jpki`` / ``CardService`` code
  against raw pyscard ``CardConnection.transmit`` with the same APDUs;
* a member-card UID read (connect, ``FF CA 00 00 00``, disconnect);
* one APDU on an open connection: raw, our session without a timeout, our
  session with the per-APDU timeout (worker hand-off per APDU);
* the APDU count of each flow;
* a check-in tap of each card kind (``CardService.tap``): APDUs and bytes
  read, against the targets (My Number Card <= 4 APDUs and <= 300 bytes;
  member card <= 3 APDUs and <= 16 bytes), timed against raw pyscard
  sending the same APDUs; and what a tap cost before (the whole
  certificate) and costs in the j1 transition. Exit status 1 when a tap
  is over its target;
* insertion-to-identified latency: vpcd connect -> watcher event (pcscd's
  own polling, about 400 ms period) and watcher event -> identified (ours).

Run: ``python bench/cardreader.py`` (about 40 s) or ``--full`` (more rounds).
"""

from __future__ import annotations

import argparse
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cardreader import apdu, certref, jpki  # noqa: E402
from cardreader.identify import identify  # noqa: E402
from cardreader.pcsc import CardSession, Pcsc  # noqa: E402
from cardreader.service import CardInfo, CardService  # noqa: E402
from cardreader.sim.testpki import write_test_pki  # noqa: E402
from cardreader.watch import CardEvent, CardWatcher  # noqa: E402
from tests.harness.cards import card_present  # noqa: E402
from tests.harness.pcscd import READER_NAMES, Pcscd  # noqa: E402
from tests.harness.services import wait_until  # noqa: E402

PIN = "1234"
CHALLENGE = b"bench-challenge-0001"
MYNUMBER, MEMBER = READER_NAMES
_READERS: dict[str, Any] = {}


# -- raw pyscard: the baseline -------------------------------------------


def raw_connection(reader: str, exclusive: bool) -> Any:
    """pyscard's high-level connection; the reader object is looked up once."""
    from smartcard.scard import SCARD_SHARE_EXCLUSIVE, SCARD_SHARE_SHARED
    from smartcard.System import readers

    if reader not in _READERS:
        _READERS[reader] = next(r for r in readers() if str(r) == reader)
    connection = _READERS[reader].createConnection()
    connection.connect(mode=SCARD_SHARE_EXCLUSIVE if exclusive else SCARD_SHARE_SHARED)
    return connection


def _raw_cert(tx: Callable[[bytes], list[int]], cert_len: int) -> None:
    tx(apdu.select_aid(apdu.JPKI_AID))
    tx(apdu.select_ef(apdu.EF_AUTH_CERT))
    cert = tx(apdu.read_binary(0, 4))
    while len(cert) < cert_len:
        cert += tx(apdu.read_binary(len(cert), min(256, cert_len - len(cert))))
    tx(apdu.select_ef(apdu.EF_AUTH_PIN))
    tx(apdu.verify_status())


def raw_flow(cert_len: int, *, auth: bool) -> int:
    """The APDUs of the read (or auth) flow with raw pyscard; returns the count."""
    connection = raw_connection(MYNUMBER, exclusive=auth)
    count = 0

    def tx(command: bytes) -> list[int]:
        nonlocal count
        count += 1
        data, _, _ = connection.transmit(list(command))
        return list(data)

    _raw_cert(tx, cert_len)
    if auth:
        tx(apdu.verify(PIN.encode()))
        tx(apdu.select_ef(apdu.EF_AUTH_KEY))
        tx(apdu.compute_signature(apdu.sha256_digest_info(CHALLENGE)))
    connection.disconnect()
    return count


def raw_uid() -> int:
    connection = raw_connection(MEMBER, exclusive=False)
    data, sw1, _ = connection.transmit(list(apdu.GET_UID))
    assert sw1 == 0x90 and data
    connection.disconnect()
    return 1


# -- our layer ----------------------------------------------------------


def ours_read(pcsc: Pcsc) -> int:
    def flow(session: CardSession) -> int:
        card = jpki.Jpki(session)
        card.select()
        card.read_auth_certificate()
        card.pin_tries_left()
        return session.apdu_count

    with pcsc.connect(MYNUMBER) as session:
        return session.run(flow)


def ours_auth(pcsc: Pcsc) -> int:
    return jpki.authenticate(pcsc, MYNUMBER, PIN, CHALLENGE).apdu_count


def ours_uid(pcsc: Pcsc) -> int:
    with pcsc.connect(MEMBER) as session:
        assert session.run(lambda s: s.transmit(apdu.GET_UID)).ok
        return session.apdu_count


# -- a check-in tap ---------------------------------------------------------

# (APDUs, bytes read) per tap, the targets.
TAP_TARGETS = {"My Number Card": (4, 300), "member card": (3, 16)}


def raw_tap_mynumber(head_len: int) -> tuple[int, int]:
    """The tap's APDUs with raw pyscard (head_len: bytes up to the issuer's end)."""
    connection = raw_connection(MYNUMBER, exclusive=False)
    got = 0
    commands = [
        apdu.select_aid(apdu.JPKI_AID),
        apdu.read_binary_sfi(apdu.EF_TOKEN_INFO, 0, 16),
        apdu.read_binary_sfi(apdu.EF_AUTH_CERT, 0, jpki.HEAD_BLOCK),
    ]
    if head_len > jpki.HEAD_BLOCK:
        rest = head_len - jpki.HEAD_BLOCK
        commands.append(apdu.read_binary_sfi(apdu.EF_AUTH_CERT, jpki.HEAD_BLOCK, rest))
    for command in commands:
        data, _, _ = connection.transmit(list(command))
        got += len(data)
    connection.disconnect()
    return len(commands), got


def raw_tap_member() -> tuple[int, int]:
    connection = raw_connection(MEMBER, exclusive=False)
    connection.transmit(list(apdu.select_aid(apdu.JPKI_AID)))
    data, _, _ = connection.transmit(list(apdu.GET_UID))
    connection.disconnect()
    return 2, len(data)


def bench_taps(service: CardService, head_len: int, cert_len: int, rounds: int) -> bool:
    """APDUs and bytes per tap for each card kind; False if one is over target."""
    print("check-in tap (CardService.tap): APDUs and bytes read per tap")
    ok = True
    cases: list[tuple[str, str, Callable[[], tuple[int, int]]]] = [
        ("My Number Card", MYNUMBER, lambda: raw_tap_mynumber(head_len)),
        ("member card", MEMBER, raw_tap_member),
    ]
    for name, reader, raw in cases:
        tap: CardInfo = service.tap(reader)
        raw_apdus, raw_bytes = raw()
        max_apdus, max_bytes = TAP_TARGETS[name]
        within = tap.apdu_count <= max_apdus and tap.bytes_received <= max_bytes
        ok = ok and within
        print(f"  {name:<15} {tap.apdu_count} APDUs, {tap.bytes_received:4d} bytes "
              f"(raw {raw_apdus} / {raw_bytes}; target <= {max_apdus} / <= {max_bytes}) "
              f"{'ok' if within else 'OVER TARGET'}")  # fmt: skip
        compare(f"tap, {name}", raw, lambda r=reader: service.tap(r), rounds)  # type: ignore[misc]
    full = service.info(MYNUMBER)
    print(f"  before (whole certificate of {cert_len} bytes + PIN tries): "
          f"{full.apdu_count} APDUs, {full.bytes_received} bytes")  # fmt: skip
    service.known_refs = lambda ref: ref == full.alternate  # a card enrolled under j1
    legacy = service.tap(MYNUMBER)
    service.known_refs = None
    print(f"  transition, card enrolled under j1 only: {legacy.apdu_count} APDUs, "
          f"{legacy.bytes_received} bytes (until the member re-enrols the card)")  # fmt: skip
    return ok


# -- measuring ------------------------------------------------------------


def compare(name: str, raw: Callable[[], object], ours: Callable[[], object], rounds: int) -> None:
    raw_ms: list[float] = []
    ours_ms: list[float] = []
    raw(), ours()  # warm up
    for _ in range(rounds):
        for fn, out in ((raw, raw_ms), (ours, ours_ms)):
            start = time.perf_counter()
            fn()
            out.append((time.perf_counter() - start) * 1000)
    r, o = statistics.median(raw_ms), statistics.median(ours_ms)
    print(f"  {name:<36} raw {r:8.3f} ms  ours {o:8.3f} ms  overhead {100 * (o / r - 1):+6.1f} %")


def bench_flows(cert_len: int, rounds: int) -> None:
    print(f"flows: median of {rounds} rounds, interleaved (certificate {cert_len} bytes)")
    with Pcsc() as pcsc:
        compare("JPKI read flow (no PIN)", lambda: raw_flow(cert_len, auth=False),
                lambda: ours_read(pcsc), rounds)  # fmt: skip
        compare("JPKI auth flow (verify + sign)", lambda: raw_flow(cert_len, auth=True),
                lambda: ours_auth(pcsc), rounds)  # fmt: skip
        compare("member UID read flow", raw_uid, lambda: ours_uid(pcsc), rounds * 4)
        print("  APDUs per flow (raw / ours): "
              f"JPKI read {raw_flow(cert_len, auth=False)} / {ours_read(pcsc)}, "
              f"JPKI auth {raw_flow(cert_len, auth=True)} / {ours_auth(pcsc)}, "
              f"UID read {raw_uid()} / {ours_uid(pcsc)}")  # fmt: skip
        counts = []
        for reader in (MYNUMBER, MEMBER):
            with pcsc.connect(reader) as session:
                session.run(identify)
                counts.append(session.apdu_count)
        print(f"  APDUs to identify: My Number Card {counts[0]}, member card {counts[1]}")
        bench_single_apdu(pcsc, rounds * 20)


def bench_single_apdu(pcsc: Pcsc, rounds: int) -> None:
    raw = raw_connection(MEMBER, exclusive=False)
    command = list(apdu.GET_UID)
    timed = pcsc.connect(MEMBER)
    plain = Pcsc(apdu_timeout=None)
    untimed = plain.connect(MEMBER)
    compare("one APDU, session without timeout", lambda: raw.transmit(command),
            lambda: untimed.transmit(apdu.GET_UID), rounds)  # fmt: skip
    compare("one APDU, with timeout (hand-off)", lambda: raw.transmit(command),
            lambda: timed.transmit(apdu.GET_UID), rounds)  # fmt: skip
    # Leave the card powered: the connections share it.
    untimed.close(unpower=False)
    timed.close(unpower=False)
    plain.close()
    raw.disconnect()


def bench_latency(member_sim: subprocess.Popen[str], cycles: int) -> None:
    events: queue.Queue[CardEvent] = queue.Queue()
    seen_ms, ident_ms = [], []
    with Pcsc() as pcsc, CardWatcher(events, reader_filter=MEMBER):
        _wait_for(events, "inserted")
        for _ in range(cycles):
            _command(member_sim, "remove")
            _wait_for(events, "removed")
            start = time.monotonic()
            _command(member_sim, "insert")
            event = _wait_for(events, "inserted")
            with pcsc.connect(MEMBER) as session:
                session.run(identify)
            done = time.monotonic()
            seen_ms.append((event.at - start) * 1000)
            ident_ms.append((done - event.at) * 1000)
    print(f"insertion to identified (member card, {cycles} cycles)")
    for name, values in (("vpcd connect -> watcher event (pcscd polling)", seen_ms),
                         ("watcher event -> identified (ours)", ident_ms)):  # fmt: skip
        print(f"  {name:<46} median {statistics.median(values):7.1f} ms  "
              f"min {min(values):6.1f}  max {max(values):6.1f}")  # fmt: skip


def _wait_for(events: queue.Queue[CardEvent], kind: str) -> CardEvent:
    while True:
        event = events.get(timeout=10)
        if event.kind == kind:
            return event


def _command(sim: subprocess.Popen[str], word: str) -> None:
    assert sim.stdin is not None and sim.stdout is not None
    sim.stdin.write(word + "\n")
    sim.stdin.flush()
    assert sim.stdout.readline().strip().startswith(word[:6])


def start_sim(*args: str) -> subprocess.Popen[str]:
    sim = subprocess.Popen(
        [sys.executable, "-m", "cardreader", "sim", "--control", "stdin", *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True, cwd=ROOT,
    )  # fmt: skip
    assert sim.stdout is not None
    line = sim.stdout.readline()
    if not line.startswith("inserted"):
        raise SystemExit(f"virtual card did not start: {line!r}")
    return sim


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--full", action="store_true", help="more rounds (about 4 minutes)")
    args = parser.parse_args()
    rounds, cycles = (200, 50) if args.full else (30, 15)
    with tempfile.TemporaryDirectory() as tmp:
        pcscd = Pcscd(Path(tmp), apdu_log=False)
        pcscd.start()
        os.environ.update(pcscd.env)
        sims: list[subprocess.Popen[str]] = []
        try:
            pki = write_test_pki(Path(tmp) / "pki")
            pki_dir = str(Path(tmp) / "pki")
            sims.append(start_sim("--profile", "mynumber", "--pin", PIN, "--pki", pki_dir,
                                  "--port", str(pcscd.ports[0])))  # fmt: skip
            sims.append(start_sim("--profile", "felica", "--port", str(pcscd.ports[1])))
            for reader in READER_NAMES:
                wait_until(lambda r=reader: card_present(r), 10, f"card in {reader}")  # type: ignore[misc]
            print(f"pcscd + vpcd, cards in their own processes; {os.cpu_count()} CPUs, "
                  f"Python {sys.version.split()[0]}")  # fmt: skip
            der = pki.users["valid"].der
            with CardService(credential_key=bytes(32)) as service:
                taps_ok = bench_taps(service, certref.parse_head(der).end, len(der), rounds)
            bench_flows(len(der), rounds)
            bench_latency(sims[1], cycles)
        finally:
            for sim in sims:
                sim.terminate()
                sim.wait(10)
            pcscd.stop()
    if not taps_ok:
        print("FAIL: a tap is over its target", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
