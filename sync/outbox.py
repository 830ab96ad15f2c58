"""The outbox: every event a device records, kept until central confirms it.

Any device process appends; :meth:`Outbox.append` returns only after the
event is committed durably (``synchronous=FULL``). The sync agent reads
pending events in ``seq`` order and deletes them only when central's ack says
they are committed there.

The envelope (DESIGN.md, wire contract): ``id`` (UUID), ``seq`` (per device,
increasing), ``type``, ``at`` (RFC 3339 with offset), ``clock_trusted``,
``data``. Event data passes the personal-data guard before it is written.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from foundation.clock import clock_is_synchronised
from foundation.privacy import check_event_data
from sync.errors import PersonalDataError, SyncError
from sync.store import Store

EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
MAX_DATA_BYTES = 8192


class EventError(SyncError, ValueError):
    """An event that cannot be recorded as given (bad type, too large)."""


@dataclass(frozen=True, slots=True)
class Event:
    """One event as stored and as sent (the wire envelope)."""

    id: str
    seq: int
    type: str
    at: str
    clock_trusted: bool
    data: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "seq": self.seq,
            "type": self.type,
            "at": self.at,
            "clock_trusted": self.clock_trusted,
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append: ``type`` and ``data``; time and id are filled in."""

    type: str
    data: Mapping[str, Any] = field(default_factory=dict)


class Outbox:
    """Append-only event log with confirm-and-delete, over a :class:`Store`."""

    def __init__(
        self,
        store: Store,
        *,
        timezone: tzinfo | None = None,
        now: Callable[[], datetime] | None = None,
        clock_trusted: Callable[[], bool] = clock_is_synchronised,
    ) -> None:
        self.store = store
        self._timezone = timezone
        self._now = now or (lambda: datetime.now(self._timezone).astimezone(self._timezone))
        self._clock_trusted = clock_trusted

    def append(self, type: str, data: Mapping[str, Any] | None = None) -> Event:
        """Record one event; returns after it is durably committed."""
        return self.append_many([NewEvent(type, data or {})])[0]

    def append_many(self, events: Iterable[NewEvent]) -> list[Event]:
        """Record several events in one commit (all or none)."""
        prepared = [self._prepare(e) for e in events]
        trusted = self._clock_trusted()
        at = self._now().isoformat(timespec="milliseconds")
        rows = [
            (event_id, type_, at, int(trusted), data_json)
            for event_id, type_, data_json, _ in prepared
        ]
        with self.store.write() as conn:
            conn.executemany(
                "INSERT INTO outbox (id, type, at, clock_trusted, data) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            # AUTOINCREMENT inside our write transaction hands out consecutive
            # seqs, so the batch ends at last_insert_rowid().
            last = int(conn.execute("SELECT last_insert_rowid()").fetchone()[0])
        first = last - len(prepared) + 1
        return [
            Event(event_id, first + i, type_, at, trusted, data)
            for i, (event_id, type_, _, data) in enumerate(prepared)
        ]

    def _prepare(self, event: NewEvent) -> tuple[str, str, str, dict[str, Any]]:
        if not EVENT_TYPE.match(event.type):
            raise EventError(
                f"event type {event.type!r} must be dotted lower-case words, e.g. 'door.unlocked'"
            )
        check_event_data(event.data)
        data = dict(event.data)
        try:
            data_json = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise PersonalDataError("data", f"not representable as JSON ({exc})") from None
        if len(data_json.encode()) > MAX_DATA_BYTES:
            raise EventError(f"event data is larger than {MAX_DATA_BYTES} bytes")
        return str(uuid.uuid4()), event.type, data_json, data

    def pending(self, limit: int = 100, after_seq: int = 0) -> list[Event]:
        """Events not yet confirmed by central, oldest first."""
        rows = self.store.query(
            "SELECT seq, id, type, at, clock_trusted, data FROM outbox"
            " WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [
            Event(
                r["id"],
                r["seq"],
                r["type"],
                r["at"],
                bool(r["clock_trusted"]),
                json.loads(r["data"]),
            )
            for r in rows
        ]

    def mark_sent(self, seqs: Sequence[int]) -> None:
        """Note that these events were handed to the broker (not yet confirmed)."""
        with self.store.write() as conn:
            conn.executemany(
                "UPDATE outbox SET state = 'sent', attempts = attempts + 1 WHERE seq = ?",
                [(s,) for s in seqs],
            )

    def confirm(self, event_ids: Iterable[str]) -> int:
        """Delete events that central confirmed as committed; returns how many."""
        ids = [(i,) for i in event_ids]
        # Draining frees space: it may use the disk's reserve (sync.headroom).
        with self.store.write(use_reserve=True) as conn:
            before = conn.total_changes
            conn.executemany("DELETE FROM outbox WHERE id = ?", ids)
            return conn.total_changes - before

    def depth(self) -> int:
        return int(self.store.query("SELECT count(*) FROM outbox")[0][0])

    def oldest_created(self) -> float | None:
        """Unix time when the oldest unconfirmed event was written, if any."""
        row = self.store.query("SELECT min(created) FROM outbox")[0]
        return None if row[0] is None else float(row[0])
