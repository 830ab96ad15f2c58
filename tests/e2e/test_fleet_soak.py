"""The fleet soak's short variant (``bench/fleet.py``): real sync agents,
each with its own MQTT session, client certificate and device store, against
central on PostgreSQL with two ingest workers and the real broker, through
every scheduled fault (broker restart and freeze, an ingest worker killed,
PostgreSQL restarted, a device process killed -9 while appending, a group of
devices cut off). The full run is ``python -m bench.fleet`` (1,000 devices,
30 minutes); its figures are in docs/performance.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.fleet import Options, run

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def test_fleet_soak_short_loses_nothing_and_converges_through_faults(artifacts_dir: Path) -> None:
    opts = Options(
        devices=16, procs=2, minutes=1.4, reservations=30, changes_per_minute=30,
        rate=8.0, health_seconds=5, cut_off_seconds=32, freeze_seconds=6, reconnect_max=3,
        offline_after=14, fire_after=3, clear_after=8, evaluate_every=2,
        out=artifacts_dir / "fleet-short",
    )  # fmt: skip
    verdict = run(opts)
    assert verdict.ok, verdict.summary()
    assert verdict.events_device > 100 and verdict.lost == verdict.duplicated == 0
    assert verdict.converged == opts.devices
    assert verdict.alerts_expected > 0 and not verdict.alerts_missing
    assert not verdict.alerts_unexpected and verdict.alerts_still_open == 0
    assert {f.name for f in verdict.faults} == {
        "broker_restart", "broker_freeze", "ingest_kill", "postgres_restart",
        "device_kill", "device_cut_off",
    }  # fmt: skip
    for plot in ("fleet.png", "memory.png", "latency.png", "report.md"):
        assert (opts.out / plot).stat().st_size > 0
