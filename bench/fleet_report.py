"""The fleet soak's checks and report (see ``bench/fleet.py``).

After the generators stop: wait for every outbox to drain, then check events
(lost, duplicated, quarantined), reservation caches (each device's hash
against central's), alerts (only the cut-off group, all closed), memory
(central's processes and the broker: no growth over the second half) and the
latency from device commit to central commit. ``write_report`` writes
``report.json``, ``report.md`` and three PNG plots.
"""

from __future__ import annotations

import itertools
import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from central.db.tables import alerts, event_quarantine, events
from central.reservations.store import ReservationStore
from contracts.reservations_hash import same_content
from tests.harness.services import wait_until

if TYPE_CHECKING:
    from bench.fleet import Changer, Sampler, Stand

# Memory is flat when the second half's last quarter is within this of its
# first quarter (or within the absolute slack: allocator noise on small heaps).
MEMORY_GROWTH_LIMIT = 0.25
MEMORY_SLACK_MB = 25.0


# The fleet is back to steady when the events waiting in all its outboxes are
# at most this many, or twice the run's median if that is more.
RECOVERED_OUTBOX = 100


@dataclass
class Fault:
    name: str
    start_s: float
    end_s: float
    devices: list[str] = field(default_factory=list)


@dataclass
class Verdict:
    devices: int = 0
    minutes: float = 0.0
    events_central: int = 0
    events_device: int = 0
    lost: int = 0
    duplicated: int = 0
    quarantined: int = 0
    drain_s: float = 0.0
    converged: int = 0
    not_converged: list[str] = field(default_factory=list)
    alerts_expected: int = 0
    alerts_opened: list[dict[str, Any]] = field(default_factory=list)
    alerts_unexpected: list[dict[str, Any]] = field(default_factory=list)
    alerts_warm_up: list[dict[str, Any]] = field(default_factory=list)
    alerts_missing: list[str] = field(default_factory=list)
    alerts_still_open: int = 0
    memory: dict[str, dict[str, float]] = field(default_factory=dict)
    latency_s: dict[str, float] = field(default_factory=dict)
    recovery_s: dict[str, float] = field(default_factory=dict)
    reservation_changes: int = 0
    reservation_change_failures: int = 0
    append_errors: int = 0
    planned_events: int = 0
    load_range: str = ""
    faults: list[Fault] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        lines = [
            f"devices {self.devices}, {self.minutes} min: {self.events_central} events at"
            f" central of {self.events_device} appended; lost {self.lost}, duplicated"
            f" {self.duplicated}, quarantined {self.quarantined}; drained in {self.drain_s:.0f} s"
            f" ({self.planned_events} planned: 3 per check-in at the configured rate)",
            f"reservation caches converged: {self.converged}/{self.devices}",
            f"alerts: {len(self.alerts_opened)} opened ({self.alerts_expected} expected),"
            f" {len(self.alerts_unexpected)} unexpected, {self.alerts_still_open} still open"
            f" ({len(self.alerts_warm_up)} more opened and closed while the fleet first connected)",
            "latency device commit -> central commit: "
            + ", ".join(f"{k} {v:.3f} s" for k, v in self.latency_s.items()),
            "back to steady outboxes (s after the generators started / each fault ended): "
            + ", ".join(f"{k} {v:.0f}" for k, v in self.recovery_s.items()),
            "memory (MB, second quarter -> last quarter): "
            + "; ".join(f"{k} {v['q2']:.0f} -> {v['q4']:.0f}" for k, v in self.memory.items()),
            f"machine load average (1 min) during the run: {self.load_range}",
        ]
        lines += [f"FAILED: {p}" for p in self.problems] or ["all checks passed"]
        return "\n".join(lines)


def verify(
    stand: Stand, sampler: Sampler, changer: Changer, started: float
) -> tuple[Verdict, list[float]]:
    """The verdict, and every event's latency (s) for the plot."""
    verdict = Verdict(devices=stand.opts.devices, minutes=stand.opts.minutes,
                      faults=list(stand.faults), reservation_changes=changer.made,
                      reservation_change_failures=changer.failed,
                      planned_events=round(3 * stand.opts.devices * stand.opts.rate
                                           * stand.opts.minutes))  # fmt: skip
    drain_started = time.monotonic()
    stop_at = time.time()
    _wait_drained(stand, stop_at)
    verdict.drain_s = time.monotonic() - drain_started
    status = stand.device_status()
    _check_events(stand, status, verdict)
    _check_caches(stand, verdict)
    _check_alerts(stand, verdict, _wall(started))
    _check_memory(sampler.samples, stand.faults, verdict)
    loads = sorted(float(s["load"]) for s in sampler.samples if "load" in s)
    if loads:
        verdict.load_range = f"{loads[0]:.1f}-{loads[-1]:.1f}, median {loads[len(loads) // 2]:.1f}"
    verdict.recovery_s = recovery_times(sampler.samples, stand.faults)
    latencies = _latency(stand, verdict, started)
    verdict.append_errors = sum(int(s.get("append_errors", 0)) for s in status.values())
    if verdict.append_errors:
        verdict.problems.append(f"{verdict.append_errors} appends failed on the devices")
    return verdict, latencies


def _wait_drained(stand: Stand, since: float, timeout: float = 900.0) -> None:
    def drained() -> bool:
        fresh = 0
        for plan in stand.plans:
            try:
                body = json.loads(Path(plan["status_file"]).read_text())
            except (OSError, ValueError):
                return False
            if body.get("generating", True) or body["at"] < since + 1:
                return False
            if any(s["outbox"] for s in body["devices"].values()):
                return False
            fresh += len(body["devices"])
        return fresh == stand.opts.devices

    wait_until(drained, timeout, "every device's outbox to drain")


def _check_events(stand: Stand, status: dict[str, dict[str, Any]], verdict: Verdict) -> None:
    assert stand.db is not None
    query = select(
        events.c.device, func.count(), func.count(func.distinct(events.c.seq)),
        func.count(func.distinct(events.c.event_id)), func.max(events.c.seq),
    ).group_by(events.c.device)  # fmt: skip
    with stand.db.read() as conn:
        rows = {r[0]: r[1:] for r in conn.execute(query)}
        quarantined = conn.execute(select(func.count()).select_from(event_quarantine)).scalar_one()
    verdict.quarantined = int(quarantined)
    for device, state in status.items():
        last = int(state["last_seq"])
        count, seqs, ids, top = rows.get(device, (0, 0, 0, 0))
        verdict.events_device += last
        verdict.events_central += int(count)
        # seq is AUTOINCREMENT: 1..last were all committed on the device (a
        # rolled-back append takes no number), so a missing one is a lost event.
        verdict.lost += last - int(seqs)
        verdict.duplicated += int(count) - min(int(seqs), int(ids))
        if top is not None and int(top) > last:
            verdict.problems.append(f"{device}: central has seq {top} > the device's {last}")
    if verdict.lost:
        verdict.problems.append(f"{verdict.lost} events lost")
    if verdict.duplicated:
        verdict.problems.append(f"{verdict.duplicated} events duplicated")
    if verdict.quarantined:
        verdict.problems.append(f"{verdict.quarantined} events quarantined")


def _check_caches(stand: Stand, verdict: Verdict, timeout: float = 180.0) -> None:
    assert stand.db is not None
    reservations = ReservationStore(stand.db)

    def diverged() -> list[str]:
        states = {f: reservations.active_state(f) for f in stand.facilities}
        status = stand.device_status()
        wrong = []
        for facility, devices in stand.facilities.items():
            version, active = states[facility]
            for device in devices:
                state = status.get(device, {})
                same = state.get("version") == version and same_content(
                    str(state.get("hash", "")), active
                )
                if not same:
                    wrong.append(device)
        return wrong

    deadline = time.monotonic() + timeout
    wrong = diverged()
    while wrong and time.monotonic() < deadline:
        time.sleep(5)
        wrong = diverged()
    verdict.not_converged = wrong
    verdict.converged = stand.opts.devices - len(wrong)
    if wrong:
        verdict.problems.append(f"{len(wrong)} reservation caches differ from central's")


def _wall(monotonic_moment: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=time.monotonic() - monotonic_moment)


def _check_alerts(stand: Stand, verdict: Verdict, started: datetime) -> None:
    """Alerts opened and closed before ``started`` (every device connected)
    came from the start-up storm, not a fault: listed apart; still open, they fail."""
    assert stand.db is not None
    # The cut-off group must be alerted; a device whose process was killed
    # may be (when it took longer than offline_after_s to come back).
    group = {d for f in stand.faults if f.name == "device_cut_off" for d in f.devices}
    may = {d for f in stand.faults for d in f.devices}
    verdict.alerts_expected = len(group)
    deadline = time.monotonic() + stand.opts.clear_after + 60
    while True:
        with stand.db.read() as conn:
            rows = [dict(r._mapping) for r in conn.execute(
                select(alerts.c.device, alerts.c.rule, alerts.c.state, alerts.c.opened_at,
                       alerts.c.resolved_at))]  # fmt: skip
        still_open = [r for r in rows if r["state"] != "resolved"]
        if not still_open or time.monotonic() > deadline:
            break
        time.sleep(5)
    warm_up = [r for r in rows if r["state"] == "resolved" and _utc(r["opened_at"]) < started]
    rows = [r for r in rows if r not in warm_up]
    verdict.alerts_warm_up = [_jsonable(r) for r in warm_up]
    verdict.alerts_opened = [_jsonable(r) for r in rows]
    verdict.alerts_unexpected = [
        _jsonable(r) for r in rows if r["device"] not in may or r["rule"] != "offline"
    ]
    alerted = {r["device"] for r in rows if r["rule"] == "offline"}
    verdict.alerts_missing = sorted(group - alerted)
    verdict.alerts_still_open = len(still_open)
    if verdict.alerts_unexpected:
        verdict.problems.append(f"{len(verdict.alerts_unexpected)} alerts for no injected fault")
    if verdict.alerts_missing:
        verdict.problems.append(f"{len(verdict.alerts_missing)} cut-off devices never alerted")
    if still_open:
        verdict.problems.append(f"{len(still_open)} alerts still open at the end")


def _check_memory(samples: list[dict[str, Any]], faults: list[Fault], verdict: Verdict) -> None:
    restarts = {"ingest-1": [f.end_s for f in faults if f.name == "ingest_kill"],
                "broker": [f.end_s for f in faults if f.name == "broker_restart"]}  # fmt: skip
    names = {name for s in samples for name in s["rss_mb"]}
    for name in sorted(names):
        since = max(restarts.get(name, [0.0]) or [0.0])
        series = [s["rss_mb"][name] for s in samples
                  if s["rss_mb"].get(name) is not None and s["t"] > since + 30]  # fmt: skip
        if len(series) < 8:
            continue
        half = series[len(series) // 2 :]
        q2 = statistics.median(half[: len(half) // 2])
        q4 = statistics.median(half[len(half) // 2 :])
        verdict.memory[name] = {"q2": q2, "q4": q4, "max": max(series)}
        if q4 > q2 * (1 + MEMORY_GROWTH_LIMIT) and q4 - q2 > MEMORY_SLACK_MB:
            verdict.problems.append(f"{name} memory grew from {q2:.0f} MB to {q4:.0f} MB")


def recovery_times(samples: list[dict[str, Any]], faults: list[Fault]) -> dict[str, float]:
    """Seconds until the events waiting in all outboxes are back to a steady
    level: after the generators started (the whole fleet's first connection,
    its births, resync requests and first health reports all at once) and
    after each fault ended. Never back: the rest of the run."""
    series = [(float(s["t"]), int(s["outbox"])) for s in samples if "outbox" in s]
    if not series:
        return {}
    level = max(RECOVERED_OUTBOX, 2 * statistics.median(waiting for _, waiting in series))

    def back_after(moment: float) -> float:
        for t, waiting in series:
            if t >= moment and waiting <= level:
                return t - moment
        return series[-1][0] - moment

    times = {"first connection": back_after(0.0)}
    for fault in faults:
        times[fault.name] = back_after(fault.end_s)
    return times


def _latency(stand: Stand, verdict: Verdict, started: float) -> list[float]:
    """p50/p99 of all events, and of the steady state: events committed on
    a device outside each fault and its recovery and outside the first
    connection's (``verdict.recovery_s``)."""
    assert stand.db is not None
    with stand.db.read() as conn:
        rows = conn.execute(select(events.c.at, events.c.received_at)).all()
    wall_start = _wall(started).timestamp()
    recovered = verdict.recovery_s
    windows = [(wall_start + f.start_s - 5, wall_start + f.end_s + recovered.get(f.name, 60))
               for f in stand.faults]  # fmt: skip
    windows.append((0.0, wall_start + recovered.get("first connection", 0.0)))
    all_values, calm = [], []
    for at, received in rows:
        latency = (_utc(received) - _utc(at)).total_seconds()
        all_values.append(latency)
        moment = _utc(at).timestamp()
        if not any(a <= moment <= b for a, b in windows):
            calm.append(latency)
    for label, values in (("all", all_values), ("steady", calm)):
        if values:
            values.sort()
            verdict.latency_s[f"p50 {label}"] = values[len(values) // 2]
            verdict.latency_s[f"p99 {label}"] = values[
                min(len(values) - 1, int(len(values) * 0.99))
            ]
    verdict.latency_s["max"] = max(all_values) if all_values else 0.0
    return all_values


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


def write_report(verdict: Verdict, samples: list[dict[str, Any]], out: Path,
                 latencies: list[float] | None = None) -> None:  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    body = asdict(verdict) | {"ok": verdict.ok}
    (out / "report.json").write_text(json.dumps(body, indent=2, default=str))
    (out / "samples.json").write_text(json.dumps(samples))
    _plots(verdict, samples, out, latencies or [])
    lines = ["# Fleet soak", "", "```", verdict.summary(), "```", "", "## Faults", "",
             "| fault | from (s) | to (s) | devices | outboxes steady again after (s) |",
             "|---|---|---|---|---|"]  # fmt: skip
    lines += [f"| {f.name} | {f.start_s:.0f} | {f.end_s:.0f} | {len(f.devices)}"
              f" | {verdict.recovery_s.get(f.name, float('nan')):.0f} |"
              for f in verdict.faults]  # fmt: skip
    first = verdict.recovery_s.get("first connection")
    if first is not None:
        lines += ["", f"The fleet's first connection: outboxes steady {first:.0f} s after the"
                  " generators started (every device's birth, resync request and first"
                  " health report at once)."]  # fmt: skip
    lines += ["", "![fleet](fleet.png)", "![memory](memory.png)", "![latency](latency.png)", ""]
    (out / "report.md").write_text("\n".join(lines))


def _plots(verdict: Verdict, samples: list[dict[str, Any]], out: Path,
           latencies: list[float]) -> None:  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["t"] / 60 for s in samples]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    rates = [0.0] + [
        ((b["events"] or 0) - (a["events"] or 0)) / max(1e-9, b["t"] - a["t"])
        if a["events"] is not None and b["events"] is not None else float("nan")
        for a, b in itertools.pairwise(samples)
    ]  # fmt: skip
    top.plot(t, rates, label="events committed at central per s")
    top.plot(t, [s["outbox"] for s in samples], label="events waiting in outboxes")
    top.legend(loc="upper right")
    bottom.plot(t, [s["connected"] for s in samples], label="devices connected")
    bottom.set_xlabel("minutes")
    bottom.legend(loc="lower right")
    for axis in (top, bottom):
        for fault in verdict.faults:
            axis.axvspan(fault.start_s / 60, fault.end_s / 60, alpha=0.15, color="red")
    fig.tight_layout()
    fig.savefig(out / "fleet.png", dpi=90)
    plt.close(fig)
    fig, axis = plt.subplots(figsize=(10, 4))
    for name in sorted({n for s in samples for n in s["rss_mb"]}):
        axis.plot(t, [s["rss_mb"].get(name) or float("nan") for s in samples], label=name)
    axis.set_ylabel("RSS (MB)")
    axis.set_xlabel("minutes")
    axis.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(out / "memory.png", dpi=90)
    plt.close(fig)
    fig, axis = plt.subplots(figsize=(10, 4))
    if latencies:
        ordered = sorted(latencies)
        axis.plot(ordered, [i / len(ordered) for i in range(len(ordered))])
        axis.set_xscale("log")
    axis.set_xlabel("device commit -> central commit (s)")
    axis.set_ylabel("fraction of events")
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=90)
    plt.close(fig)
