"""Central's one audit log: who did what, when, from where, with what outcome
(docs/ops.md, "Audit log"). :mod:`.log` writes (append-only, checked for
personal data), :mod:`.query` reads, filters and exports."""

from central.audit import query
from central.audit.log import (
    CLI_SOURCE,
    SOURCE,
    AuditEntry,
    Outcome,
    cli_actor,
    record,
    record_now,
)
from central.audit.query import AuditFilter

__all__ = [
    "CLI_SOURCE",
    "SOURCE",
    "AuditEntry",
    "AuditFilter",
    "Outcome",
    "cli_actor",
    "query",
    "record",
    "record_now",
]
