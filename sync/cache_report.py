"""What ``python -m sync reservations`` shows of a device's reservation cache.

Counts, the version and active-window hash the device reports to central, and
per door the time windows the cache covers. Nothing personal and nothing a
door decision keys on: no credential references, no code hashes, no
reservation ids.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from sync.reservations import ReservationCache


@dataclass(frozen=True)
class DoorWindows:
    door: str
    active: int
    cancelled: int
    # Active reservations covering ``now``, and those starting after it.
    current: int
    upcoming: int
    first_start: str | None
    last_end: str | None
    next_start: str | None


@dataclass(frozen=True)
class CacheReport:
    facility: str
    version: int
    synced_at: str | None
    synced_age_s: float | None
    active_hash: str
    reservations: int
    active: int
    cancelled: int
    with_code: int
    with_credentials: int
    doors: list[DoorWindows]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _iso(seconds: int | float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def cache_report(cache: ReservationCache, now: float | None = None) -> CacheReport:
    now = time.time() if now is None else now
    store = cache.store
    totals = store.query(
        "SELECT count(*), coalesce(sum(status = 'active'), 0),"
        " coalesce(sum(status = 'cancelled'), 0), coalesce(sum(code_hash IS NOT NULL), 0),"
        " (SELECT count(DISTINCT reservation_id) FROM reservation_credentials)"
        " FROM reservations"
    )[0]
    doors = store.query(
        "SELECT door, sum(status = 'active'), sum(status = 'cancelled'),"
        " sum(status = 'active' AND starts_at <= :now AND ends_at > :now),"
        " sum(status = 'active' AND starts_at > :now),"
        " min(CASE WHEN status = 'active' THEN starts_at END),"
        " max(CASE WHEN status = 'active' THEN ends_at END),"
        " min(CASE WHEN status = 'active' AND starts_at > :now THEN starts_at END)"
        " FROM reservations GROUP BY door ORDER BY door",
        {"now": now},
    )
    synced = cache.applied_at()
    return CacheReport(
        facility=cache.facility,
        version=cache.version(),
        synced_at=_iso(synced),
        synced_age_s=None if synced is None else round(max(0.0, now - synced), 1),
        active_hash=cache.active_hash(now),
        reservations=int(totals[0]),
        active=int(totals[1]),
        cancelled=int(totals[2]),
        with_code=int(totals[3]),
        with_credentials=int(totals[4]),
        doors=[
            DoorWindows(
                str(d[0]),
                int(d[1]),
                int(d[2]),
                int(d[3]),
                int(d[4]),
                _iso(d[5]),
                _iso(d[6]),
                _iso(d[7]),
            )
            for d in doors
        ],
    )


def format_report(report: CacheReport) -> str:
    """The report as lines for a person at the device's shell."""
    age = "never" if report.synced_age_s is None else f"{report.synced_age_s:.0f} s ago"
    lines = [
        f"facility {report.facility}: version {report.version}, synced {age}",
        f"active hash {report.active_hash}",
        f"{report.reservations} reservations: {report.active} active,"
        f" {report.cancelled} cancelled; {report.with_code} with a code,"
        f" {report.with_credentials} with cards",
    ]
    for d in report.doors:
        lines.append(
            f"  door {d.door}: {d.active} active ({d.current} now, {d.upcoming} upcoming),"
            f" {d.cancelled} cancelled; from {d.first_start or '-'} to {d.last_end or '-'},"
            f" next start {d.next_start or '-'}"
        )
    return "\n".join(lines)
