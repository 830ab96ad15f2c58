"""Check-in speed, each against a raw baseline measured in the same run.

    python bench/checkin.py [--runs 5] [--json]

* UI start to interactive: from spawning ``python -m kiosk --measure-startup``
  to its first drawn frame of the attract screen (target at most 3 s here),
  against a minimal Kivy app with one label started the same way.
* Decision with 100,000 reservations cached: the store lookup plus the pure
  decision for one card, against a bare indexed SQLite query for the same
  rows.

Starts its own Xvfb. Figures go to ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kiosk.access import DeviceState, Policy, decide  # noqa: E402
from kiosk.reservations import StoreReservations  # noqa: E402
from sync.store import open_store  # noqa: E402
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
            "KIOSK_STATE_DIR": str(workdir / "state"), "PYTHONPATH": str(ROOT),
        }  # fmt: skip
        ours, raw = [], []
        for _ in range(runs):
            raw.append(time_to_ready([sys.executable, str(raw_script)], env))
            ours.append(time_to_ready([sys.executable, "-m", "kiosk", "--measure-startup"], env))
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="UI starts per side")
    parser.add_argument("--reservations", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {
            "ui_startup": ui_startup(args.runs, Path(tmp)),
            "decision": decision_speed(Path(tmp), args.reservations, args.lookups),
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
    print(f"lookup + decision, {args.reservations} reservations cached (ms)   p50     p99")
    for label, key in (("ours (StoreReservations + decide)", "ours"), ("raw indexed query", "raw")):
        p50, p99 = dec[f"{key}_p50_ms"], dec[f"{key}_p99_ms"]
        print(f"  {label:<48}{p50:7.3f} {p99:7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
