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

import functools
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from foundation.clock import clock_is_synchronised
from foundation.privacy import guarded_json
from sync.errors import SyncError
from sync.store import Store

EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
MAX_DATA_BYTES = 8192
_INSERT = "INSERT INTO outbox (id, type, at, clock_trusted, data) VALUES (?, ?, ?, ?, ?)"


def new_event_ids(count: int) -> list[str]:
    """``count`` random (version 4) UUIDs as text, from one read of the OS's
    random source: what ``str(uuid.uuid4())`` gives, at a fifth of its cost
    (it builds a ``UUID`` object per id; appends are the hot path)."""
    raw = bytearray(os.urandom(16 * count))
    for at in range(0, 16 * count, 16):
        raw[at + 6] = raw[at + 6] & 0x0F | 0x40  # version 4
        raw[at + 8] = raw[at + 8] & 0x3F | 0x80  # the RFC 4122 variant
    text = raw.hex()
    return [
        f"{text[a : a + 8]}-{text[a + 8 : a + 12]}-{text[a + 12 : a + 16]}"
        f"-{text[a + 16 : a + 20]}-{text[a + 20 : a + 32]}"
        for a in range(0, 32 * count, 32)
    ]


@functools.lru_cache(maxsize=256)  # a device records a few dozen event types
def _valid_type(type_: str) -> bool:
    return EVENT_TYPE.match(type_) is not None


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
        ids = new_event_ids(len(prepared))
        trusted = self._clock_trusted()
        at = self._now().isoformat(timespec="milliseconds")
        flag = int(trusted)
        rows = [(i, t, at, flag, text) for i, (t, text, _) in zip(ids, prepared, strict=True)]
        with self.store.write() as conn:
            if len(rows) == 1:
                last = conn.execute(_INSERT, rows[0]).lastrowid
            else:
                conn.executemany(_INSERT, rows)
                # AUTOINCREMENT inside our write transaction hands out
                # consecutive seqs, so the batch ends at last_insert_rowid()
                # (executemany leaves lastrowid unset before Python 3.12).
                last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
        last = int(last or 0)
        first = last - len(prepared) + 1
        return [
            Event(i, seq, t, at, trusted, data)
            for seq, i, (t, _, data) in zip(range(first, last + 1), ids, prepared, strict=True)
        ]

    def _prepare(self, event: NewEvent) -> tuple[str, str, dict[str, Any]]:
        if not _valid_type(event.type):
            raise EventError(
                f"event type {event.type!r} must be dotted lower-case words, e.g. 'door.unlocked'"
            )
        data = dict(event.data)
        data_json = guarded_json(data)
        # A character is at most 4 bytes in UTF-8: short text needs no encoding to measure.
        if len(data_json) * 4 > MAX_DATA_BYTES and len(data_json.encode()) > MAX_DATA_BYTES:
            raise EventError(f"event data is larger than {MAX_DATA_BYTES} bytes")
        return event.type, data_json, data

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
