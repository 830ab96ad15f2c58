"""Reading the audit log: the admins' filters (time range, actor, action,
outcome, source), pages newest first, and the CSV export of a filtered view.
Plain queries; the dashboard page and ``GET /api/audit`` call these."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.engine import Row

from central.audit.log import AuditEntry, Outcome
from central.db.engine import Database, aware, utc
from central.db.tables import audit_log

PAGE = 100  # rows per page
EXPORT_MAX = 100_000  # rows per CSV export (narrow the filters for more)
CSV_COLUMNS = ("at", "actor", "action", "subject", "source", "outcome", "reason", "detail")


@dataclass(frozen=True)
class AuditFilter:
    """Empty fields do not filter. ``actor`` and ``action`` match a prefix
    (``staff:`` all staff, ``staff.`` every staff account action);
    ``since`` is inclusive, ``until`` exclusive."""

    since: datetime | None = None
    until: datetime | None = None
    actor: str = ""
    action: str = ""
    outcome: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if self.outcome and self.outcome not in {o.value for o in Outcome}:
            raise ValueError(f"outcome must be one of {', '.join(o.value for o in Outcome)}")

    def apply(self, query: Select[Any]) -> Select[Any]:
        c = audit_log.c
        if self.since is not None:
            query = query.where(c.at >= utc(self.since))
        if self.until is not None:
            query = query.where(c.at < utc(self.until))
        if self.actor:
            query = query.where(c.actor.startswith(self.actor, autoescape=True))
        if self.action:
            query = query.where(c.action.startswith(self.action, autoescape=True))
        if self.outcome:
            query = query.where(c.outcome == self.outcome)
        if self.source:
            query = query.where(c.source == self.source)
        return query

    def described(self) -> dict[str, str]:
        """The filters in effect (for the export's own audit entry)."""
        values = {"since": self.since.isoformat() if self.since else "",
                  "until": self.until.isoformat() if self.until else "",
                  "actor": self.actor, "action": self.action, "outcome": self.outcome,
                  "source": self.source}  # fmt: skip
        return {k: v for k, v in values.items() if v}


def entry(row: Row[Any]) -> AuditEntry:
    return AuditEntry(row.pk, aware(row.at), row.actor, row.action, row.subject,
                      dict(row.detail), row.source, row.outcome, row.reason)  # fmt: skip


def page(db: Database, filters: AuditFilter, *, before: int | None = None,
         limit: int = PAGE) -> list[AuditEntry]:  # fmt: skip
    """Newest first; ``before`` (an entry's ``pk``) continues after a page."""
    query = filters.apply(select(audit_log)).order_by(audit_log.c.pk.desc()).limit(limit)
    if before is not None:
        query = query.where(audit_log.c.pk < before)
    with db.read() as conn:
        return [entry(r) for r in conn.execute(query)]


def count(db: Database, filters: AuditFilter) -> int:
    with db.read() as conn:
        query = filters.apply(select(func.count()).select_from(audit_log))
        return int(conn.execute(query).scalar_one())


def as_dict(found: AuditEntry) -> dict[str, Any]:
    return {"id": found.pk, "at": found.at.isoformat(), "actor": found.actor,
            "action": found.action, "subject": found.subject, "source": found.source,
            "outcome": found.outcome, "reason": found.reason,
            "detail": found.detail}  # fmt: skip


def csv_lines(db: Database, filters: AuditFilter) -> Iterator[str]:
    """The filtered entries as CSV (UTF-8 text, header first, newest first, at
    most :data:`EXPORT_MAX`); ``detail`` as compact JSON in one cell. A cell
    that a spreadsheet would run as a formula is quoted with a leading '."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(values: list[str]) -> str:
        writer.writerow([_cell(v) for v in values])
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield line(list(CSV_COLUMNS))
    query = filters.apply(select(audit_log)).order_by(audit_log.c.pk.desc()).limit(EXPORT_MAX)
    with db.read() as conn:
        for row in conn.execute(query):
            found = entry(row)
            yield line([found.at.isoformat(), found.actor, found.action, found.subject,
                        found.source, found.outcome, found.reason,
                        json.dumps(found.detail, ensure_ascii=False, sort_keys=True,
                                   separators=(",", ":"))])  # fmt: skip


def _cell(value: str) -> str:
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
