"""What the ingest workers write: events (idempotent on the event id),
quarantined events, per-device seq tracking and the device registry.

Every method is one transaction; a deadlock or busy database is retried.
Concurrency on PostgreSQL: rows are inserted sorted by event id and device
rows are locked in device order, so two workers never deadlock each other.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from central.db.engine import Database, aware, is_retryable, now_utc, utc
from central.db.tables import device_seq, devices, event_quarantine, events, health_samples
from central.errors import DatabaseError
from central.ingest.seqtrack import Range, SeqState, advance
from central.ops.service import health_figures
from contracts.mqtt import EventBatch, EventEnvelope, Health, Status
from foundation.errors import PersonalDataError
from foundation.privacy import check_event_data

log = logging.getLogger(__name__)
T = TypeVar("T")
# Called in the storing transaction with the event rows that were new (the
# booking webhook queues its check-in messages there, so none is lost).
StoredHook = Callable[[Connection, list[dict[str, Any]], datetime], object]
MAX_EVENT_DATA_BYTES = 16 * 1024
RETRIES = 5


@dataclass(frozen=True)
class QuarantinedEvent:
    """An event whose envelope was valid and whose content central refused."""

    event_id: str
    device: str
    seq: int
    type: str
    reason: str


@dataclass
class IngestOutcome:
    """What one transaction stored; ``acks`` maps device -> committed ids."""

    acks: dict[str, list[str]] = field(default_factory=dict)
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    # The events quarantined by this transaction (duplicates excluded).
    quarantined_events: list[QuarantinedEvent] = field(default_factory=list)
    gaps_opened: list[tuple[str, Range]] = field(default_factory=list)


def refusal(event: EventEnvelope) -> str | None:
    """Why central refuses an event's content (quarantine), or None."""
    return _checked(event)[1]


def _checked(event: EventEnvelope) -> tuple[str, str | None]:
    """The event's data as compact JSON (serialised once: it is also what the
    PostgreSQL insert sends) and why it is refused, or None."""
    try:
        # allow_nan=False: NaN or Infinity would make every later read of the
        # event fail (not JSON); json refuses them while serialising.
        text = json.dumps(event.data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return "", "data holds NaN or Infinity"
    if len(text) > MAX_EVENT_DATA_BYTES:
        return text, f"data of {len(text)} bytes exceeds {MAX_EVENT_DATA_BYTES}"
    try:
        check_event_data(event.data)
    except PersonalDataError as exc:
        return text, str(exc)
    return text, None


class IngestStore:
    def __init__(self, db: Database, worker_id: str, max_gap_ranges: int = 100,
                 on_stored: StoredHook | None = None) -> None:  # fmt: skip
        self.db = db
        self.worker_id = worker_id
        self.max_gap_ranges = max_gap_ranges
        self.on_stored = on_stored

    def _retry(self, what: str, body: Callable[[Connection], T], durable: bool = True) -> T:
        for attempt in range(1, RETRIES + 1):
            try:
                with self.db.write(durable=durable) as conn:
                    return body(conn)
            except SQLAlchemyError as exc:
                if attempt < RETRIES and is_retryable(exc):
                    log.warning("transaction retried", extra={"what": what, "attempt": attempt})
                    continue
                raise DatabaseError(f"{what} failed: {str(exc).splitlines()[0]}") from exc
        raise AssertionError("unreachable")

    # events -----------------------------------------------------------------

    def store_batches(self, batches: Sequence[EventBatch]) -> IngestOutcome:
        """Store several batches in one transaction; returns ids to ack.

        Rows go in in (device, seq, id) order, so ``pk`` follows seq within
        a transaction.
        """
        return self._retry("storing events", lambda conn: self._store(conn, batches))

    def _store(self, conn: Connection, batches: Sequence[EventBatch]) -> IngestOutcome:
        now = now_utc()
        out = IngestOutcome()
        good: dict[str, dict[str, Any]] = {}
        bad: dict[str, dict[str, Any]] = {}
        data_json: dict[str, str] = {}
        for batch in batches:
            acked = out.acks.setdefault(batch.device, [])
            for ev in batch.events:
                acked.append(ev.id)
                text, reason = _checked(ev)
                if reason is None:
                    good[ev.id] = _event_row(batch.device, ev, now, self.worker_id)
                    data_json[ev.id] = text
                else:
                    bad[ev.id] = _quarantine_row(batch.device, ev, reason, now)
        new_seqs: dict[str, list[int]] = {d: [] for d in out.acks}
        if good:
            rows = sorted(good.values(), key=_order)
            if self.db.dialect == "postgresql":
                inserted = _insert_events_pg(conn, rows, data_json, now, self.worker_id)
            else:
                stmt = self.db.insert(events).on_conflict_do_nothing()
                result = conn.execute(stmt.returning(events.c.device, events.c.seq), rows)
                inserted = [(str(d), int(q)) for d, q in result]
            out.stored = len(inserted)
            for device, seq in inserted:
                new_seqs[device].append(seq)
            self._hook(conn, rows, inserted, now)
        if bad:
            stmt = self.db.insert(event_quarantine).on_conflict_do_nothing()
            rows = sorted(bad.values(), key=_order)
            columns = event_quarantine.c
            kept = conn.execute(
                stmt.returning(columns.device, columns.seq, columns.event_id), rows
            ).all()
            out.quarantined = len(kept)
            for device, seq, event_id in kept:
                new_seqs[device].append(seq)
                row = bad[event_id]
                out.quarantined_events.append(QuarantinedEvent(
                    event_id, device, seq, row["type"], row["reason"]))  # fmt: skip
        seen = sum(len(batch.events) for batch in batches)
        out.duplicates = seen - out.stored - out.quarantined
        for device in sorted(new_seqs):
            self._touch_device(conn, device, now)
            if new_seqs[device]:
                opened = self._track_seq(conn, device, new_seqs[device], now)
                out.gaps_opened += [(device, gap) for gap in opened]
        return out

    def _hook(self, conn: Connection, rows: list[dict[str, Any]],
              inserted: list[tuple[str, int]], now: datetime) -> None:  # fmt: skip
        if self.on_stored is not None and inserted:
            new = set(inserted)
            stored = [r for r in rows if (r["device"], r["seq"]) in new]
            self.on_stored(conn, stored, aware(now))

    def _touch_device(self, conn: Connection, device: str, now: datetime) -> None:
        stmt = self.db.insert(devices).values(id=device, last_seen=now, versions={})
        stmt = stmt.on_conflict_do_update(
            index_elements=[devices.c.id], set_={"last_seen": stmt.excluded.last_seen}
        )
        conn.execute(stmt)

    def _track_seq(
        self, conn: Connection, device: str, seqs: list[int], now: datetime
    ) -> list[Range]:
        conn.execute(
            self.db.insert(device_seq)
            .values(device=device, contiguous_seq=0, max_seq=0, gaps=[], events_total=0,
                    updated_at=now)
            .on_conflict_do_nothing()
        )  # fmt: skip
        query = select(device_seq).where(device_seq.c.device == device)
        if self.db.lock_clause():
            query = query.with_for_update()
        row = conn.execute(query).one()
        state = SeqState(
            row.contiguous_seq, row.max_seq, tuple((a, b) for a, b in row.gaps), row.events_total
        )
        result = advance(state, seqs, self.max_gap_ranges)
        new = result.state
        conn.execute(
            update(device_seq)
            .where(device_seq.c.device == device)
            .values(contiguous_seq=new.contiguous, max_seq=new.max_seq,
                    gaps=[list(g) for g in new.gaps], events_total=new.total, updated_at=now)
        )  # fmt: skip
        return result.opened

    # registry ---------------------------------------------------------------

    def record_status(self, device: str, status: Status) -> bool:
        """Apply a birth or will unless it is older than what we have.

        Applied when its session is newer, or it is the same session going
        offline; a late will of an older session is ignored (False).
        """
        now = now_utc()
        values = {
            "id": device,
            "status": status.state,
            "session": status.session,
            "status_at": utc(status.at) if status.at else now,
            "last_seen": now,
            "versions": dict(status.versions),
        }

        def body(conn: Connection) -> bool:
            stmt = self.db.insert(devices).values(**values)
            newer = or_(
                stmt.excluded.session > devices.c.session,
                and_(stmt.excluded.session == devices.c.session, stmt.excluded.status == "offline"),
            )
            keep_versions = status.state == "offline" and not status.versions
            changes = {k: stmt.excluded[k] for k in ("status", "session", "status_at", "last_seen")}
            if not keep_versions:
                changes["versions"] = stmt.excluded.versions
            stmt = stmt.on_conflict_do_update(
                index_elements=[devices.c.id], set_=changes, where=newer
            )
            return conn.execute(stmt.returning(devices.c.id)).first() is not None

        return self._retry("recording a status", body)

    def record_health(self, device: str, health: Health) -> None:
        now = now_utc()
        payload = health.model_dump(mode="json")
        values = {"id": device, "health": payload, "health_at": now, "last_seen": now,
                  "versions": dict(health.versions)}  # fmt: skip

        def body(conn: Connection) -> None:
            stmt = self.db.insert(devices).values(**values)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[devices.c.id],
                    set_={k: stmt.excluded[k] for k in ("health", "health_at", "last_seen")},
                )
            )
            # The history sample goes in with the latest value, in one commit.
            conn.execute(
                insert(health_samples).values(
                    device=device, at=now, resolution=0, figures=health_figures(payload)
                )
            )

        # Not flushed on its own (the next durable commit carries it): a
        # report the device sends again every minute is not worth an fsync,
        # and at a fleet's reconnection these are a third of all messages.
        self._retry("recording health", body, durable=False)

    def device_facility(self, device: str) -> str | None:
        with self.db.read() as conn:
            value = conn.execute(select(devices.c.facility).where(devices.c.id == device)).scalar()
        return str(value) if value else None

    def register_device(self, device: str, facility: str) -> None:
        """Register (or move) a device to a facility."""

        def body(conn: Connection) -> None:
            stmt = self.db.insert(devices).values(id=device, facility=facility, versions={})
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[devices.c.id], set_={"facility": stmt.excluded.facility}
                )
            )

        self._retry("registering a device", body)

    # queries ----------------------------------------------------------------

    def list_devices(self) -> list[dict[str, Any]]:
        query = (
            select(devices, device_seq.c.contiguous_seq, device_seq.c.max_seq, device_seq.c.gaps,
                   device_seq.c.events_total)
            .select_from(devices.outerjoin(device_seq, device_seq.c.device == devices.c.id))
            .order_by(devices.c.id)
        )  # fmt: skip
        with self.db.read() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def query_events(
        self,
        *,
        device: str | None = None,
        types: Iterable[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Events ordered by their central row number (``pk``), after ``after``."""
        query = select(events).where(events.c.pk > after)
        if device:
            query = query.where(events.c.device == device)
        type_list = list(types)
        if type_list:
            query = query.where(events.c.type.in_(type_list))
        if since:
            query = query.where(events.c.at >= utc(since))
        if until:
            query = query.where(events.c.at < utc(until))
        query = query.order_by(events.c.pk).limit(limit)
        with self.db.read() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def query_quarantine(
        self, *, device: str | None = None, after: int = 0, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Quarantined events ordered by their central row number (``pk``),
        after ``after``: the envelope without data, and the reason."""
        query = select(event_quarantine).where(event_quarantine.c.pk > after)
        if device:
            query = query.where(event_quarantine.c.device == device)
        query = query.order_by(event_quarantine.c.pk).limit(limit)
        with self.db.read() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]


# PostgreSQL: the rows travel as ONE json parameter (a short statement, one
# C-speed json.dumps) that the server unpacks; psycopg's per-element array
# dumping in Python and a statement as long as the batch were both slower.
# ``n`` keeps the rows in their sorted order (no lock-order deadlocks).
_PG_INSERT = (
    "INSERT INTO events (event_id, device, seq, type, at, clock_trusted, data, received_at,"
    " worker) SELECT r.event_id, r.device, r.seq, r.type, r.at, r.clock_trusted, r.data,"
    " %s::timestamp, %s FROM json_to_recordset(%s::json) AS r(event_id varchar,"
    " device varchar, seq bigint, type varchar, at timestamp, clock_trusted boolean, data jsonb,"
    " n bigint) ORDER BY r.n ON CONFLICT DO NOTHING RETURNING device, seq"
)


def _insert_events_pg(
    conn: Connection, rows: list[dict[str, Any]], data_json: dict[str, str], now: datetime,
    worker: str,
) -> list[tuple[str, int]]:  # fmt: skip
    """Insert ``rows`` (in their order) on PostgreSQL; the (device, seq) stored."""
    # The data is spliced in as the JSON text _checked made (not serialised
    # twice); the other fields are plain values json.dumps escapes.
    parts = [
        json.dumps({"n": n, "event_id": r["event_id"], "device": r["device"], "seq": r["seq"],
                    "type": r["type"], "at": r["at"].isoformat(),
                    "clock_trusted": r["clock_trusted"]})[:-1]
        + ',"data":' + data_json[r["event_id"]] + "}"
        for n, r in enumerate(rows)
    ]  # fmt: skip
    payload = "[" + ",".join(parts) + "]"
    result = conn.exec_driver_sql(_PG_INSERT, (now, worker, payload))
    return [(str(d), int(q)) for d, q in result]


def _order(row: dict[str, Any]) -> tuple[str, int, str]:
    """One deterministic insert order for every worker (no lock-order deadlocks)."""
    return (row["device"], row["seq"], row["event_id"])


def _event_row(device: str, ev: EventEnvelope, now: datetime, worker: str) -> dict[str, Any]:
    return {
        "event_id": ev.id,
        "device": device,
        "seq": ev.seq,
        "type": ev.type,
        "at": utc(ev.at),
        "clock_trusted": ev.clock_trusted,
        "data": ev.data,
        "received_at": now,
        "worker": worker,
    }


def _quarantine_row(device: str, ev: EventEnvelope, reason: str, now: datetime) -> dict[str, Any]:
    return {
        "event_id": ev.id,
        "device": device,
        "seq": ev.seq,
        "type": ev.type,
        # The data is withheld: refused content may be personal data.
        "envelope": {**ev.model_dump(mode="json", exclude={"data"}), "data_withheld": True},
        "reason": reason,
        "received_at": now,
    }
