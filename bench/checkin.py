"""Check-in speed, each against a raw baseline measured in the same run.

    python bench/checkin.py [--runs 5] [--json]

* UI start to interactive: from spawning ``python -m bench.ui_startup`` (the
  check-in app on the demo's configuration) to its first drawn frame of the
  attract screen (target at most 3 s here), against a minimal Kivy app with
  one label started the same way.
* Decision with 100,000 reservations cached: the store lookup plus the pure
  decision for one card, against a bare indexed SQLite query for the same
  rows.
* Card to relay: from the card watcher seeing pcscd report the card to the
  lock controller's reply that the relay is energised (identification,
  lookup among 100,000 reservations, decision, unlock over the socket, event
  committed), with a real pcscd + vpcd and lockctl on mock pins (target p99
  at most 150 ms here); baseline: raw pyscard GET UID plus a raw socket
  unlock request, in the same run. pcscd's own polling (insertion to its
  report, about 0-400 ms) is reported separately.

Starts its own Xvfb, pcscd and lockctl. Figures go to ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cardreader.sim.pcscd import READER_NAMES  # noqa: E402
from demo.config import write_demo_config  # noqa: E402
from kiosk.checkin.access import DeviceState, Policy, decide  # noqa: E402
from kiosk.checkin.reservations import StoreReservations  # noqa: E402
from sync.store import open_store  # noqa: E402
from tests.harness.cards import card_present  # noqa: E402
from tests.harness.keys import TEST_KEY, write_test_key  # noqa: E402
from tests.harness.services import wait_until  # noqa: E402
from tests.harness.xvfb import Xvfb  # noqa: E402

TOKYO = ZoneInfo("Asia/Tokyo")
RAW_KIVY = """
from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.uix.label import Label
class Raw(App):
    def build(self):
        return Label(text="ready")
    def on_start(self):
        def first(*_a):
            Window.unbind(on_flip=first)
            print("READY", flush=True)
            Clock.schedule_once(lambda _dt: self.stop(), 0)
        Window.bind(on_flip=first)
        Window.canvas.ask_update()
Raw().run()
"""


def time_to_ready(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "READY":
            elapsed = time.perf_counter() - start
            proc.wait(30)
            return elapsed
    raise RuntimeError(f"{argv} exited without READY (code {proc.wait()})")


def ui_startup(runs: int, workdir: Path) -> dict[str, float]:
    xvfb = Xvfb(workdir / "xvfb").start()
    try:
        raw_script = workdir / "raw_kivy.py"
        raw_script.write_text(RAW_KIVY)
        env = {
            **os.environ, **xvfb.env, "KIVY_NO_ARGS": "1", "KIVY_NO_FILELOG": "1",
            "KIVY_NO_CONSOLELOG": "1", "KIVY_HOME": str(workdir / "kivy"),
            "PYTHONPATH": str(ROOT),
        }  # fmt: skip
        config = write_demo_config(workdir / "state")
        ours, raw = [], []
        for _ in range(runs):
            raw.append(time_to_ready([sys.executable, str(raw_script)], env))
            ours.append(time_to_ready(
                [sys.executable, "-m", "bench.ui_startup", "--config", str(config)], env
            ))  # fmt: skip
    finally:
        xvfb.stop()
    return {"ours_median_s": statistics.median(ours), "ours_max_s": max(ours),
            "raw_median_s": statistics.median(raw), "raw_max_s": max(raw)}  # fmt: skip


def seed(store_path: Path, count: int) -> None:
    now = datetime(2026, 11, 28, 10, 0, tzinfo=TOKYO)
    with open_store(store_path) as store, store.write() as conn:
        rows, creds = [], []
        for i in range(count):
            start = now + timedelta(minutes=30 * (i % 2000) - 30000)
            rows.append((f"r{i}", "gym", f"room-{i % 20}", int(start.timestamp()),
                         int((start + timedelta(hours=1)).timestamp()), 1))  # fmt: skip
            creds.append((f"r{i}", f"cr1_member{i % 40000:05d}"))
        conn.executemany(
            "INSERT INTO reservations (id, facility, door, starts_at, ends_at, version)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.executemany(
            "INSERT INTO reservation_credentials (reservation_id, credential_ref) VALUES (?, ?)",
            creds,
        )


def decision_speed(workdir: Path, count: int, lookups: int) -> dict[str, float]:
    path = workdir / "decide.db"
    seed(path, count)
    now = datetime(2026, 11, 28, 10, 0, tzinfo=TOKYO)
    with open_store(path) as store:
        source = StoreReservations(store, TOKYO)
        state = DeviceState(now, True, timedelta(minutes=1))
        ours, raw = [], []
        for i in range(lookups):
            ref = f"cr1_member{(i * 7919) % 40000:05d}"
            t0 = time.perf_counter()
            decide("room-3", source.for_credential(ref, now), state, Policy())
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            store.conn.execute(
                "SELECT r.* FROM reservation_credentials c"
                " JOIN reservations r ON r.id = c.reservation_id"
                " WHERE c.credential_ref = ? AND r.ends_at > ? AND r.starts_at < ?",
                (ref, int(now.timestamp()) - 86400, int(now.timestamp()) + 7 * 86400),
            ).fetchall()
            raw.append(time.perf_counter() - t0)
    ours.sort()
    raw.sort()
    return {
        "ours_p50_ms": ours[len(ours) // 2] * 1e3, "ours_p99_ms": ours[int(len(ours) * 0.99)] * 1e3,
        "raw_p50_ms": raw[len(raw) // 2] * 1e3, "raw_p99_ms": raw[int(len(raw) * 0.99)] * 1e3,
    }  # fmt: skip


UID = bytes.fromhex("012E4CD2A1B2C3D4")


def _tap_device(workdir: Path, count: int) -> Path:
    """A device config and store: 100,000 reservations plus one for the card."""
    from cardreader.credential import member_reference

    store_path = workdir / "tap.db"
    seed(store_path, count)
    now = int(datetime.now(TOKYO).timestamp())
    with open_store(store_path) as store, store.write() as conn:
        conn.execute(
            "INSERT INTO reservations (id, facility, door, starts_at, ends_at, version)"
            " VALUES ('bench', 'gym', 'room-a', ?, ?, 1)",
            (now - 60, now + 3600),
        )
        ref = member_reference(TEST_KEY, UID)
        conn.execute("INSERT INTO reservation_credentials VALUES ('bench', ?)", (ref,))
        conn.execute(
            "INSERT INTO sync_state (key, value) VALUES ('reservations.synced_at', ?)",
            (repr(time.time()),),
        )
    config_path = workdir / "device.toml"
    config_path.write_text(
        f'[device]\nid = "bench"\nfacility = "gym"\n[store]\npath = "{store_path}"\n'
        f'[reader]\ncredential_key_file = "{write_test_key(workdir / "credential.key")}"\n'
        f'[lock]\nsocket = "{workdir / "lockctl.sock"}"\npin_factory = "mock"\n'
        'default_unlock_seconds = 0.2\n[[doors]]\nid = "room-a"\nrelay_pin = 17\n'
    )
    return config_path


def _measure_taps(config_path: Path, port: int, taps: int) -> tuple[list[float], list[float]]:
    """(card seen by the watcher -> unlock reply) and (insert -> watcher) per tap."""
    from cardreader.service import CardService
    from cardreader.sim.cards import UidCard
    from cardreader.sim.vpcd import VpcdLink
    from kiosk.cards import CardFeed, CardSeen
    from kiosk.checkin.wiring import LockctlPort, build_checkin_service
    from sync.config import load_config

    config = load_config(config_path)
    lock = LockctlPort(config.lock.socket, timeout=2)
    service, close = build_checkin_service(config, lock, clock_trusted=lambda: True)
    ours: list[float] = []
    seen_at = [0.0]
    done = threading.Event()

    def sink(seen: CardSeen) -> None:
        result = service.present_credential(seen.ref or "")
        assert result.unlocked_seconds > 0, result
        ours.append(time.monotonic() - seen_at[0])
        done.set()

    feed = CardFeed(CardService(credential_key=TEST_KEY), sink)

    def stamp(event: Any) -> None:  # the watcher's own time of seeing the card
        seen_at[0] = event.at
        feed.offer(event)

    feed.start(watch=False)
    watcher = feed.service.watch(stamp)
    polling = []
    try:
        for _ in range(taps):
            done.clear()
            link = VpcdLink(UidCard(uid=UID), port=port)
            inserted = time.monotonic()
            link.insert()
            done.wait(10)
            polling.append(seen_at[0] - inserted)
            link.remove()
            wait_until(lambda: not card_present(READER_NAMES[0]), 10, "pcscd to see the removal")
    finally:
        watcher.close()
        feed.close()
        close()
    return ours, polling


def card_to_relay(workdir: Path, count: int, taps: int) -> dict[str, float]:
    from cardreader.sim.pcscd import PrivatePcscd

    config_path = _tap_device(workdir, count)
    sock = workdir / "lockctl.sock"
    pcscd = PrivatePcscd(workdir / "pcscd", apdu_log=False).start()
    os.environ.update(pcscd.env)
    lockctl = subprocess.Popen(
        [sys.executable, "-m", "lockctl", "serve", "--config", str(config_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(sock.exists, 20, "lockctl's socket")
        ours, polling = _measure_taps(config_path, pcscd.port, taps)
        raw = raw_card_to_relay(pcscd.port, sock, taps)
    finally:
        lockctl.terminate()
        lockctl.wait(10)
        pcscd.stop()
    ours.sort()
    raw.sort()
    polling.sort()
    return {
        "ours_p50_ms": ours[len(ours) // 2] * 1e3, "ours_p99_ms": ours[-1] * 1e3,
        "raw_p50_ms": raw[len(raw) // 2] * 1e3, "raw_p99_ms": raw[-1] * 1e3,
        "pcscd_polling_p50_ms": polling[len(polling) // 2] * 1e3, "taps": taps,
    }  # fmt: skip


def raw_card_to_relay(port: int, sock: Path, taps: int) -> list[float]:
    """pyscard GET UID + one raw unlock line on the socket, per tap."""
    from smartcard.System import readers

    from cardreader.sim.cards import UidCard
    from cardreader.sim.vpcd import VpcdLink

    times = []
    reader = next(r for r in readers() if "00 00" in str(r))
    for i in range(taps):
        link = VpcdLink(UidCard(uid=UID), port=port)
        link.insert()
        wait_until(lambda: card_present(READER_NAMES[0]), 10, "pcscd to report the card", 0.01)
        connection = reader.createConnection()
        connection.connect()
        t0 = time.monotonic()
        connection.transmit([0xFF, 0xCA, 0x00, 0x00, 0x00])
        request = {"op": "unlock", "door": "room-a", "seconds": 0.2, "id": i}
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(sock))
            s.sendall(json.dumps(request).encode() + b"\n")
            s.makefile("rb").readline()
        times.append(time.monotonic() - t0)
        connection.disconnect()
        link.remove()
        wait_until(lambda: not card_present(READER_NAMES[0]), 10, "pcscd to see the removal")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="UI starts per side")
    parser.add_argument("--reservations", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--taps", type=int, default=20, help="card taps for card-to-relay")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {
            "ui_startup": ui_startup(args.runs, Path(tmp)),
            "decision": decision_speed(Path(tmp), args.reservations, args.lookups),
            "card_to_relay": card_to_relay(Path(tmp), args.reservations, args.taps),
        }
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    ui, dec = results["ui_startup"], results["decision"]
    print("UI start to interactive (s)          median    max")
    print(
        f"  kiosk touchscreen                   {ui['ours_median_s']:6.2f} {ui['ours_max_s']:6.2f}"
    )
    print(f"  raw Kivy app with one label         {ui['raw_median_s']:6.2f} {ui['raw_max_s']:6.2f}")
    tap = results["card_to_relay"]
    print(f"card reported by pcscd -> relay energised, {args.reservations} reservations (ms)")
    print(f"  ours (feed, identify, lookup, decide, unlock)  p50 {tap['ours_p50_ms']:7.1f}"
          f"  max {tap['ours_p99_ms']:7.1f}  ({tap['taps']:.0f} taps)")  # fmt: skip
    print(f"  raw pyscard GET UID + socket unlock            p50 {tap['raw_p50_ms']:7.1f}"
          f"  max {tap['raw_p99_ms']:7.1f}")  # fmt: skip
    print(
        f"  pcscd polling (insert -> reported)             p50 {tap['pcscd_polling_p50_ms']:7.1f}"
    )
    print(f"lookup + decision, {args.reservations} reservations cached (ms)   p50     p99")
    for label, key in (("ours (StoreReservations + decide)", "ours"), ("raw indexed query", "raw")):
        p50, p99 = dec[f"{key}_p50_ms"], dec[f"{key}_p99_ms"]
        print(f"  {label:<48}{p50:7.3f} {p99:7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
