"""Publishing one month: read, aggregate, suppress, write, validate, swap
in, rebuild the catalogue, and record it in the audit log (a refusal too).
Months are calendar months in ``opendata.timezone``; only a month that is
over and had something in it is published."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from central.db.engine import Database
from central.opendata import aggregate, datasets
from central.opendata.config import OpendataSection
from central.opendata.package import (
    MONTH_NAME,
    OpendataError,
    Publisher,
    descriptor,
    publish_month,
    write_catalog,
)
from central.opendata.source import MonthFacts, read_month
from central.reservations.audit import record

log = logging.getLogger(__name__)
ACTION = "opendata.publish"


@dataclass(frozen=True)
class Published:
    month: str
    folder: Path
    files: list[str]
    withheld_rows: int


def month_bounds(month: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    if not MONTH_NAME.match(month):
        raise OpendataError(f"month {month!r}: give it as YYYY-MM, e.g. 2026-11")
    year, mon = (int(p) for p in month.split("-"))
    return (
        datetime(year, mon, 1, tzinfo=zone),
        datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=zone),
    )


def build_tables(
    month: str,
    facts: MonthFacts,
    section: OpendataSection,
    kind_labels: Mapping[str, tuple[str, str]],
) -> list[datasets.Table]:
    k = section.min_count
    names = {(r.facility, r.id): (_facility_name(facts, r.facility), r.name) for r in facts.rooms}
    rooms = [(r.facility, r.id) for r in facts.rooms]
    start, end = month_bounds(month, section.zone)
    return [
        datasets.certificates_table(month, aggregate.certificates(facts.issued), kind_labels, k),
        datasets.use_table(month, aggregate.room_use(facts.bookings, rooms), names, k),
        datasets.device_table(
            month, aggregate.availability(facts.samples, facts.device_facility, start, end)
        ),
        datasets.facility_list(
            facts.facilities,
            facts.rooms,
            code=section.municipality_code,
            prefecture=section.prefecture,
            city=section.publisher,
        ),
    ]


def _facility_name(facts: MonthFacts, facility: str) -> str:
    return next((f.name for f in facts.facilities if f.id == facility), "")


def publish(
    db: Database,
    section: OpendataSection,
    month: str,
    *,
    out: Path,
    base_url: str,
    kind_labels: Mapping[str, tuple[str, str]],
    now: datetime,
    actor: str = "cli",
) -> Published:
    """Publish ``month`` into ``out``; a refusal raises :class:`OpendataError`
    after recording it (nothing written)."""
    try:
        start, end = month_bounds(month, section.zone)
        if end > now:
            raise OpendataError(
                f"{month} is not over yet (it ends {end.isoformat()}); "
                "a month is published once it is complete"
            )
        if not base_url:
            raise OpendataError(
                "set opendata.base_url (or api.public_url): the catalogue "
                "needs the public address of /opendata/"
            )
        facts = read_month(db, start, end)
        if facts.empty:
            raise OpendataError(
                f"{month} has no data: no booking, certificate or device report; nothing published"
            )
    except OpendataError as exc:
        _audit(db, actor, month, "refused", reason=str(exc))
        log.warning("open data refused", extra={"month": month, "reason": str(exc)})
        raise
    tables = build_tables(month, facts, section, kind_labels)
    publisher = Publisher(section.publisher, section.publisher_en, section.publisher_url)
    files = [t.path for t in tables] + ["datapackage.json"]
    withheld = sum(
        1
        for t in tables
        for row in t.rows
        if t.columns[-1].name == "suppressed" and row[-1] is True
    )
    try:
        folder = publish_month(out, month, tables, descriptor(month, tables, publisher, now))
        write_catalog(out, base_url, publisher)
    except OpendataError as exc:  # did not validate: the month's old files stay
        _audit(db, actor, month, "refused", reason=str(exc))
        raise
    # After the swap: a database failure here leaves the files published
    # without their entry, and the command fails saying so (exit 5).
    _audit(
        db,
        actor,
        month,
        "published",
        files=files,
        withheld_rows=withheld,
        min_count=section.min_count,
    )
    log.info(
        "open data published",
        extra={"month": month, "folder": str(folder), "withheld_rows": withheld},
    )
    return Published(month, folder, files, withheld)


def _audit(db: Database, actor: str, month: str, outcome: str, **detail: object) -> None:
    with db.write() as conn:
        record(conn, actor, ACTION, f"opendata:{month}", outcome=outcome, **detail)
