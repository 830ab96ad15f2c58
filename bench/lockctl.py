"""Lock controller latency and relock accuracy, against raw baselines in the same run.

    python bench/lockctl.py [--requests 300] [--relocks 40] [--full] [--json]

The real daemon (``python -m lockctl serve``) runs on gpiozero MockFactory
pins. Relay edges are timed by the mock pin itself (``time.monotonic()``,
the same clock in every process), not by our code:

* request -> relay energised: client timestamp before sending ``unlock`` to
  the relay pin's rising edge; also request -> reply (round trip);
* relock accuracy: the relay's falling edge minus the ``deadline_monotonic``
  the daemon promised, for unlocks of 0.1-0.5 s;
* baselines: a raw unix-socket JSON-line echo server in another process
  (request -> reply), and a raw gpiozero ``OutputDevice.on()`` on a
  MockFactory in this process (call -> edge).

Targets: request -> relay energised p99 <= 10 ms; relock within
50 ms of the deadline at p99. ``--full`` = 3000 requests and 200 relocks.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gpiozero import OutputDevice  # noqa: E402

from lockctl.client import LockClient  # noqa: E402
from lockctl.hardware import TimedMockPin, make_factory  # noqa: E402

CONFIG = """\
[device]
id = "bench-01"
facility = "bench"
[store]
path = "device.db"
[lock]
socket = "lockctl.sock"
pin_factory = "mock"
max_unlock_seconds = 30
[[doors]]
id = "room-a"
relay_pin = 17
contact_pin = 27
[[doors]]
id = "room-b"
relay_pin = 5
"""

ECHO_SERVER = """
import socket, sys
srv = socket.socket(socket.AF_UNIX); srv.bind(sys.argv[1]); srv.listen(1)
print("ready", flush=True)
conn, _ = srv.accept(); f = conn.makefile("rb")
for line in f:
    conn.sendall(line)
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 3),
        "p99_ms": round(pct(ms, 99), 3),
        "max_ms": round(max(ms), 3),
    }


def edge_after(history: list[list[Any]], t: float, level: bool) -> float:
    return float(next(at for at, lv in history if at >= t and lv is level))


def history(client: LockClient, door: str) -> list[list[Any]]:
    doors = client.status()["doors"]
    return list(next(d for d in doors if d["door"] == door)["mock_relay_history"])


def bench_requests(client: LockClient, n: int) -> tuple[list[float], list[float]]:
    energise, reply = [], []
    pending: list[float] = []
    for i in range(n):
        t0 = time.monotonic()
        client.unlock("room-a", seconds=5, reason="remote", ref=f"bench-{i}")
        reply.append(time.monotonic() - t0)
        pending.append(t0)
        client.lock("room-a")
        if len(pending) >= 200 or i == n - 1:  # the pin keeps its last 1000 edges
            edges = history(client, "room-a")
            energise += [edge_after(edges, t, True) - t for t in pending]
            pending = []
    return energise, reply


def bench_relocks(client: LockClient, n: int) -> list[float]:
    errors = []
    rng = random.Random(4)
    for _ in range(n):
        t0 = time.monotonic()
        reply = client.unlock("room-b", seconds=rng.uniform(0.1, 0.5), reason="remote")
        deadline = reply["deadline_monotonic"]
        while time.monotonic() < deadline + 0.1:
            time.sleep(0.02)
        edges = history(client, "room-b")
        off = edge_after(edges, edge_after(edges, t0, True), False)
        errors.append(off - deadline)
    return errors


def bench_raw_echo(folder: Path, n: int) -> list[float]:
    path = folder / "echo.sock"
    proc = subprocess.Popen(
        [sys.executable, "-c", ECHO_SERVER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(path))
            f = sock.makefile("rb")
            line = json.dumps({"op": "unlock", "door": "room-a", "seconds": 5}).encode() + b"\n"
            times = []
            for _ in range(n):
                t0 = time.monotonic()
                sock.sendall(line)
                json.loads(f.readline())
                times.append(time.monotonic() - t0)
            return times
    finally:
        proc.kill()
        proc.wait()


def bench_raw_gpiozero(n: int) -> list[float]:
    factory = make_factory("mock")
    relay = OutputDevice(17, initial_value=False, pin_factory=factory)
    pin: TimedMockPin = relay.pin
    times = []
    for _ in range(n):
        t0 = time.monotonic()
        relay.on()
        times.append(pin.history[-1][0] - t0)
        relay.off()
    relay.close()
    return times


def start_daemon(folder: Path) -> subprocess.Popen[bytes]:
    (folder / "device.toml").write_text(CONFIG)
    log = (folder / "lockctl.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lockctl", "serve", "--config", str(folder / "device.toml")],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with LockClient(folder / "lockctl.sock", timeout=1) as c:
                c.status()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("lockctl did not start; see " + str(folder / "lockctl.log"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--relocks", type=int, default=40)
    parser.add_argument("--full", action="store_true", help="3000 requests, 200 relocks")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.full:
        args.requests, args.relocks = 3000, 200
    with tempfile.TemporaryDirectory(prefix="bench-lockctl-") as tmp:
        folder = Path(tmp)
        proc = start_daemon(folder)
        try:
            with LockClient(folder / "lockctl.sock") as client:
                energise, reply = bench_requests(client, args.requests)
                relock = bench_relocks(client, args.relocks)
        finally:
            proc.terminate()
            proc.wait(10)
        results: dict[str, Any] = {
            "machine": f"{platform.machine()} Python {platform.python_version()}",
            "request_to_relay_energised": summary(energise),
            "request_to_reply": summary(reply),
            "raw_socket_echo_round_trip": summary(bench_raw_echo(folder, args.requests)),
            "raw_gpiozero_on_to_edge": summary(bench_raw_gpiozero(args.requests)),
            "relock_minus_deadline": summary(relock),
        }
    results["targets"] = {
        "relay_p99_le_10ms": results["request_to_relay_energised"]["p99_ms"] <= 10,
        "relock_p99_within_50ms": abs(results["relock_minus_deadline"]["p99_ms"]) <= 50,
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"lockctl benchmark ({results['machine']})")
    for name, value in results.items():
        if isinstance(value, dict) and "p50_ms" in value:
            print(
                f"  {name:30} n={value['n']:5}  p50 {value['p50_ms']:8.3f} ms"
                f"  p99 {value['p99_ms']:8.3f} ms  max {value['max_ms']:8.3f} ms"
            )
    print(f"  targets: {results['targets']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
