"""Health figures of a device, collected for the ``health`` topic.

Everything is read from the kernel and the store without subprocesses, except
the Raspberry Pi throttling flags, which come from the firmware's sysfs file
when the kernel exposes it, else from ``vcgencmd get_throttled`` (1 s
timeout). A figure that is not available on this machine is left out (null),
never guessed.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from contracts.mqtt import Health
from foundation.clock import clock_is_synchronised
from sync.config import TlsSection
from sync.outbox import Outbox
from sync.reservations import ReservationSync

THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")
THROTTLED_SYSFS = Path("/sys/devices/platform/soc/soc:firmware/get_throttled")
PROC_UPTIME = Path("/proc/uptime")
PROC_MEMINFO = Path("/proc/meminfo")

log = logging.getLogger(__name__)


def read_float(path: Path) -> float | None:
    try:
        return float(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def cpu_temp_c(path: Path = THERMAL_ZONE) -> float | None:
    milli = read_float(path)
    if milli is None:
        return None
    value = milli / 1000.0
    return value if -50 <= value <= 150 else None


def throttled(sysfs: Path = THROTTLED_SYSFS) -> int | None:
    """The Pi firmware's throttling bitmask (0x50005 = under-voltage now/since boot, ...)."""
    try:
        return int(sysfs.read_text().strip(), 16)
    except (OSError, ValueError):
        pass
    tool = shutil.which("vcgencmd")
    if tool is None:
        return None
    try:
        out = subprocess.run(
            [tool, "get_throttled"], capture_output=True, text=True, timeout=1, check=True
        ).stdout
        return int(out.strip().split("=")[1], 16)
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def mem_available_mb(path: Path = PROC_MEMINFO) -> float | None:
    try:
        for line in path.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return None
    return None


def store_bytes(db_path: Path) -> int:
    total = 0
    for suffix in ("", "-wal", "-shm"):
        try:
            total += db_path.with_name(db_path.name + suffix).stat().st_size
        except OSError:
            continue
    return total


def software_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "os": platform.platform(terse=True)}
    for dist in ("city-kiosk", "paho-mqtt"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return versions


@dataclass
class HealthCollector:
    """Builds :class:`~contracts.mqtt.Health` messages for one agent."""

    store_path: Path
    outbox: Outbox
    reservations: ReservationSync
    session: Callable[[], int]
    started: float = 0.0
    clock_trusted: Callable[[], bool] = clock_is_synchronised
    # The pushed configuration version the agent was started with
    # (DeviceConfig.pushed_version): a push restarts the agent, so it is current.
    config_version: int | None = None

    def collect(self) -> Health:
        now = time.time()
        # The oldest row by seq (primary key): no scan of a large backlog.
        rows = self.outbox.store.query("SELECT created FROM outbox ORDER BY seq LIMIT 1")
        oldest = float(rows[0][0]) if rows else None
        applied = self.reservations.cache.applied_at()
        try:
            disk = shutil.disk_usage(self.store_path.parent)
            disk_free: float | None = disk.free / 1e6
            read_only: bool | None = bool(os.statvfs(self.store_path.parent).f_flag & os.ST_RDONLY)
        except OSError:
            disk_free, read_only = None, None
        try:
            load1: float | None = os.getloadavg()[0]
        except OSError:
            load1 = None
        return Health(
            at=datetime.now(UTC),
            session=self.session(),
            uptime_s=read_float(PROC_UPTIME),
            cpu_temp_c=cpu_temp_c(),
            throttled=throttled(),
            load1=load1,
            mem_available_mb=mem_available_mb(),
            disk_free_mb=disk_free,
            disk_read_only=read_only,
            store_full=self.outbox.store.space_low(),
            store_bytes=store_bytes(self.store_path),
            outbox_depth=self.outbox.depth(),
            outbox_oldest_age_s=None if oldest is None else max(0.0, now - oldest),
            reservation_version=self.reservations.cache.version(),
            reservation_age_s=None if applied is None else max(0.0, now - applied),
            reservation_hash=self.reservations.active_hash(),
            clock_synchronised=self.clock_trusted(),
            versions=software_versions(),
            config_version=self.config_version,
        )


def certificate_usable(tls: TlsSection) -> bool:
    """Say clearly when the device certificate cannot work (the broker only
    closes the connection). The agent keeps retrying either way: the clock may
    be the problem (a Pi without RTC before NTP), not the certificate."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(tls.cert_file.read_bytes())
    except (OSError, ValueError) as exc:
        log.error(
            "device certificate unreadable", extra={"file": str(tls.cert_file), "error": str(exc)}
        )
        return False
    now = datetime.now(UTC)
    if cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return True
    log.error(
        "device certificate is not valid now: renew it (python -m deploy fleet device),"
        " or check the clock if it is not synchronised",
        extra={
            "file": str(tls.cert_file),
            "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat(),
        },
    )
    return False
