"""The audit trail of facility reservations, kept importable for the
reservation services (and the open-data publisher): :func:`record` writes to
central's one audit log (:mod:`central.audit`) with every keyword as detail --
ids, times, codes, never a name or an e-mail address. Written inside the
change's own transaction, so an entry exists exactly when the change does."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.engine import Connection

from central import audit as central_audit
from central.audit import AuditEntry
from central.db.engine import Database
from central.db.tables import audit_log

__all__ = ["RESERVATION_ACTIONS", "AuditEntry", "entries", "record", "reservation_actions"]

# The action areas of reservations: what the staff reservation pages' audit
# trail (any viewer) shows. Sign-ins, API requests, tokens and the like are in
# the same log but for admins only (the dashboard's /audit-log).
RESERVATION_ACTIONS = ("booking.", "member.", "card.", "room.", "closure.", "facility.",
                       "enrolment_code.", "opendata.")  # fmt: skip


def reservation_actions() -> ColumnElement[bool]:
    """A WHERE clause: the entry is a reservation action."""
    return or_(*(audit_log.c.action.startswith(area) for area in RESERVATION_ACTIONS))


def record(conn: Connection, actor: str, action: str, subject: str, **detail: Any) -> None:
    """``actor``: ``token:<id>``, ``staff:<name>``, ``device:<id>``, ``cli``, ...;
    ``subject``: ``booking:<id>``, ``member:<id>``, ...; values JSON-able.
    Where from is the current request's or command's (``central.audit.SOURCE``)."""
    central_audit.record(conn, actor, action, subject, detail=detail)


def entries(db: Database, *, subject: str | None = None, limit: int = 100) -> list[AuditEntry]:
    """Newest first."""
    query = select(audit_log).order_by(audit_log.c.pk.desc()).limit(limit)
    if subject:
        query = query.where(audit_log.c.subject == subject)
    with db.read() as conn:
        return [central_audit.query.entry(r) for r in conn.execute(query)]
