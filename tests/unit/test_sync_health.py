"""Health collection on this machine: every figure valid for the contract."""

from __future__ import annotations

from pathlib import Path

from contracts import mqtt as protocol
from contracts.mqtt import Health
from sync.health import HealthCollector, cpu_temp_c, throttled
from sync.outbox import Outbox
from sync.reservations import ReservationCache, ReservationSync
from sync.store import open_store


def test_health_collect_reports_store_outbox_and_reservations(tmp_path: Path) -> None:
    db = tmp_path / "device.db"
    with open_store(db) as store:
        outbox = Outbox(store)
        outbox.append("test.ping", {"n": 1})
        cache = ReservationCache(store, "fac-1")
        cache.apply_snapshot(3, [])
        collector = HealthCollector(db, outbox, ReservationSync(cache), lambda: 4)
        health = protocol.decode(Health, protocol.encode(collector.collect()))
    assert health.session == 4
    assert health.outbox_depth == 1
    assert health.outbox_oldest_age_s is not None and health.outbox_oldest_age_s >= 0
    assert health.reservation_version == 3
    assert health.reservation_age_s is not None
    assert health.store_bytes and health.store_bytes > 0
    assert health.store_full is False
    assert health.disk_free_mb and health.mem_available_mb and health.uptime_s
    assert "python" in health.versions and "paho-mqtt" in health.versions


def test_health_pi_figures_from_files(tmp_path: Path) -> None:
    temp = tmp_path / "temp"
    temp.write_text("48312\n")
    assert cpu_temp_c(temp) == 48.312
    temp.write_text("garbage")
    assert cpu_temp_c(temp) is None
    flags = tmp_path / "get_throttled"
    flags.write_text("50005\n")
    assert throttled(flags) == 0x50005
