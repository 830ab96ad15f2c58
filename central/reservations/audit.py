"""The audit trail of facility reservations: who changed which member, card,
room, closure or booking, when, and what (ids, times, codes -- never a name
or an e-mail address). Written inside the change's own transaction, so an
entry exists exactly when the change does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from central.db.engine import Database, aware, now_utc
from central.db.tables import audit_log


@dataclass(frozen=True)
class AuditEntry:
    pk: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]


def record(conn: Connection, actor: str, action: str, subject: str, **detail: Any) -> None:
    """``actor``: ``token:<id>``, ``staff:<name>``, ``device:<id>``, ``cli``, ...;
    ``subject``: ``booking:<id>``, ``member:<id>``, ...; values JSON-able."""
    conn.execute(audit_log.insert().values(
        at=now_utc(), actor=actor, action=action, subject=subject, detail=detail))  # fmt: skip


def entries(db: Database, *, subject: str | None = None, limit: int = 100) -> list[AuditEntry]:
    """Newest first."""
    query = select(audit_log).order_by(audit_log.c.pk.desc()).limit(limit)
    if subject:
        query = query.where(audit_log.c.subject == subject)
    with db.read() as conn:
        return [
            AuditEntry(r.pk, aware(r.at), r.actor, r.action, r.subject, dict(r.detail))
            for r in conn.execute(query)
        ]
