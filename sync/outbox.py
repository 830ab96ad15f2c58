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
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, NamedTuple

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


# A UUID's version (4) and RFC 4122 variant bits, as uuid.uuid4() sets them.
_UUID_KEEP = ~(0xF000 << 64 | 0xC000 << 48)
_UUID_SET = 0x4000 << 64 | 0x8000 << 48


def new_event_id() -> str:
    """One id as :func:`new_event_ids` makes them, without its loops: a
    single append's (its whole budget is a few tens of microseconds)."""
    text = "%032x" % (int.from_bytes(os.urandom(16)) & _UUID_KEEP | _UUID_SET)
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@functools.lru_cache(maxsize=256)  # a device records a few dozen event types
def _valid_type(type_: str) -> bool:
    return EVENT_TYPE.match(type_) is not None


class _LocalStamp:
    """The time now as ``at`` (RFC 3339, milliseconds, the zone's offset):
    ``datetime.now(tz).astimezone(tz).isoformat(timespec="milliseconds")``,
    with the date, time and offset formatted once a second instead of per
    event (offsets only change on a whole second)."""

    __slots__ = ("_last", "_timezone")

    def __init__(self, timezone: tzinfo | None) -> None:
        self._timezone = timezone
        # (second, text before the milliseconds, offset), replaced whole so
        # threads stamping at once never mix two seconds' parts.
        self._last: tuple[int, str, str] = (-1, "", "")

    def __call__(self) -> str:
        # Milliseconds cut, not rounded, from the nanosecond clock, as
        # datetime.now() and isoformat() cut them.
        second, ns = divmod(time.time_ns(), 1_000_000_000)
        last = self._last
        if last[0] != second:
            zone = self._timezone
            local = datetime.fromtimestamp(second, zone).astimezone(zone)
            text = local.isoformat(timespec="seconds")
            last = self._last = (second, text[:19], text[19:])
        return f"{last[1]}.{ns // 1_000_000:03d}{last[2]}"


class EventError(SyncError, ValueError):
    """An event that cannot be recorded as given (bad type, too large)."""


class Event(NamedTuple):
    """One event as stored and as sent (the wire envelope).

    A named tuple rather than a frozen dataclass: as immutable, and one is
    built per appended event at a third of the cost."""

    id: str
    seq: int
    type: str
    at: str
    clock_trusted: bool
    data: dict[str, Any]

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
        self._stamp: Callable[[], str] = (
            _LocalStamp(timezone)
            if now is None
            else lambda: now().isoformat(timespec="milliseconds")
        )
        self._clock_trusted = clock_trusted

    def append(self, type: str, data: Mapping[str, Any] | None = None) -> Event:
        """Record one event; returns after it is durably committed."""
        # append_many's steps for one event, without its lists: the hot path.
        type_, text, copy = self._prepare(type, data or {})
        event_id = new_event_id()
        trusted = self._clock_trusted()
        at = self._stamp()
        seq = self.store.insert(_INSERT, (event_id, type_, at, int(trusted), text))
        return Event(event_id, seq, type_, at, trusted, copy)

    def append_many(self, events: Iterable[NewEvent]) -> list[Event]:
        """Record several events in one commit (all or none)."""
        prepared = [self._prepare(e.type, e.data) for e in events]
        ids = new_event_ids(len(prepared))
        trusted = self._clock_trusted()
        at = self._stamp()
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

    def _prepare(self, type_: str, data: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
        if not _valid_type(type_):
            raise EventError(
                f"event type {type_!r} must be dotted lower-case words, e.g. 'door.unlocked'"
            )
        copy = dict(data)
        data_json = guarded_json(copy)
        # A character is at most 4 bytes in UTF-8: short text needs no encoding to measure.
        if len(data_json) * 4 > MAX_DATA_BYTES and len(data_json.encode()) > MAX_DATA_BYTES:
            raise EventError(f"event data is larger than {MAX_DATA_BYTES} bytes")
        return type_, data_json, copy

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
