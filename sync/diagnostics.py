"""``diagnostics.collect``: what a technician needs from a device, as one
JSON document for central (versions, health, store, outbox, command ledger
and recent log lines of the city-kiosk units).

Log lines are the only free text in it, so each goes through the
personal-data guard first: PIN data, VERIFY APDUs and 12-digit numbers are
masked (:func:`foundation.logs.redact_text`), e-mail addresses replaced,
and a line the event guard (:func:`foundation.privacy.check_event_data`)
still refuses is dropped, counted in ``logs_dropped``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contracts.commands import MAX_ATTACHMENT_BYTES
from foundation.logs import redact_text
from foundation.privacy import check_event_data
from sync.errors import PersonalDataError
from sync.health import software_versions, store_bytes
from sync.outbox import Outbox
from sync.store import Store, open_store
from sync.system import LogLine, System, SystemActionError

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
EMAIL_MASK = "<e-mail>"
LIMIT = MAX_ATTACHMENT_BYTES["diagnostics.collect"]


def clean_line(text: str) -> str | None:
    """``text`` without personal data, or None when it cannot be cleaned."""
    cleaned = EMAIL.sub(EMAIL_MASK, redact_text(text))
    try:
        check_event_data({"line": cleaned})
    except PersonalDataError:
        return None
    return cleaned


def clean_lines(lines: list[LogLine]) -> tuple[list[dict[str, str]], int]:
    """The lines as JSON objects, personal data masked; and how many were dropped."""
    kept: list[dict[str, str]] = []
    dropped = 0
    for line in lines:
        message = clean_line(line.message)
        unit = clean_line(line.unit)
        if message is None or unit is None:
            dropped += 1
            continue
        kept.append({"at": line.at, "unit": unit, "level": line.level, "message": message})
    return kept, dropped


@dataclass
class DiagnosticsSources:
    """Where the figures come from (the agent's store, health and system)."""

    device: str
    outbox: Outbox
    system: System
    health: Callable[[], dict[str, Any] | None]


def ledger_summary(store: Store) -> dict[str, int]:
    """How many ledger entries per ``target/state`` (no ids, no arguments)."""
    rows = store.query("SELECT target, state, count(*) AS n FROM commands GROUP BY target, state")
    return {f"{r['target']}/{r['state']}": int(r["n"]) for r in rows}


def collect(sources: DiagnosticsSources, command_id: str, log_lines: int) -> bytes:
    """The diagnostics document (UTF-8 JSON, at most the upload limit)."""
    try:
        raw, journal_error = sources.system.journal(log_lines), ""
    except SystemActionError as exc:
        raw, journal_error = [], str(exc)
    logs, dropped = clean_lines(raw)
    # A connection of its own: the integrity check reads the whole file, and
    # must not hold the agent's connection (its loop writes through it).
    with open_store(sources.outbox.store.path) as store:
        integrity = store.integrity_problems() or "ok"
        outbox_depth = Outbox(store).depth()
        ledger = ledger_summary(store)
    document: dict[str, Any] = {
        "device": sources.device,
        "command": command_id,
        "collected_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "versions": software_versions(),
        "health": sources.health(),
        "store": {"integrity": integrity, "bytes": store_bytes(sources.outbox.store.path)},
        "outbox_depth": outbox_depth,
        "ledger": ledger,
        "logs_dropped": dropped,
        "logs_error": journal_error,
        "logs": logs,
    }
    body = _encode(document)
    while len(body) > LIMIT and document["logs"]:
        # Too much: the oldest half of the lines goes first.
        document["logs"] = document["logs"][len(document["logs"]) // 2 + 1 :]
        document["logs_truncated"] = True
        body = _encode(document)
    return body


def _encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, default=str).encode()
