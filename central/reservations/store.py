"""Reservations at central: rows, the per-facility version, the change log
and what devices are sent (live deltas, catch-up deltas, snapshots).

Every change batch (one API call) is one transaction that bumps its
facility's version by one and appends one change-log row; the publisher
sends change-log rows in version order (:mod:`central.reservations.publisher`). The log
keeps ``keep_versions`` versions per facility; an older ``from_version`` is
answered with a snapshot. What devices are sent is cut to a payload budget in
bytes (:mod:`central.reservations.chunks`): snapshot chunks by bytes and
count, catch-up deltas between versions; a single version over the budget
is answered with a snapshot.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import SQLAlchemyError

from central.db.engine import Database, aware, is_retryable, now_utc, utc
from central.db.tables import facilities, reservation_changes, reservations
from central.errors import CentralError, ConflictError, DatabaseError, NotFoundError
from central.reservations.chunks import (
    change_size,
    delta_overhead,
    encoded_reservations,
    snapshot_payloads,
)
from contracts.mqtt import MAX_PAYLOAD_BYTES, Reservation, ReservationChange, ReservationDelta

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_CHANGES_PER_DELTA = 5000
EDITABLE = ("door", "starts_at", "ends_at", "credential_refs", "code_hash")


@dataclass(frozen=True)
class EncodedSnapshot:
    """A snapshot ready to publish: each payload is one chunk's message."""

    facility: str
    version: int
    snapshot_id: str
    reservations: int
    payloads: list[bytes]


@dataclass(frozen=True)
class Change:
    """A committed change batch: the reservation(s) after it and the delta."""

    reservations: list[Reservation]
    delta: ReservationDelta | None


class ReservationStore:
    def __init__(self, db: Database, keep_versions: int = 10000, max_delta_versions: int = 1000):
        self.db = db
        self.keep_versions = keep_versions
        self.max_delta_versions = max_delta_versions
        self._active_cache: dict[str, tuple[int, list[Reservation]]] = {}

    def _tx(self, what: str, body: Callable[[Connection], T]) -> T:
        for attempt in range(1, 6):
            try:
                with self.db.write() as conn:
                    return body(conn)
            except SQLAlchemyError as exc:
                if attempt < 5 and is_retryable(exc):
                    continue
                raise DatabaseError(f"{what} failed: {str(exc).splitlines()[0]}") from exc
        raise AssertionError("unreachable")

    # changes ----------------------------------------------------------------

    def create(self, reservation: Reservation) -> Change:
        def body(conn: Connection) -> Change:
            if conn.execute(select(reservations.c.id).where(reservations.c.id == reservation.id)
                            ).first():  # fmt: skip
                raise ConflictError(f"reservation {reservation.id!r} already exists")
            delta = self._bump(conn, reservation.facility, [ReservationChange(
                op="upsert", reservation=reservation)])  # fmt: skip
            return Change([reservation], delta)

        return self._tx("creating a reservation", body)

    def update(self, reservation_id: str, fields: dict[str, Any]) -> Change:
        unknown = set(fields) - set(EDITABLE)
        if unknown:
            raise ConflictError(f"cannot change {sorted(unknown)} of a reservation")

        def body(conn: Connection) -> Change:
            current = self._get(conn, reservation_id, lock=True)
            if current.status == "cancelled":
                raise ConflictError(f"reservation {reservation_id!r} is cancelled")
            merged = Reservation.model_validate({**current.model_dump(), **fields})
            if merged == current:
                return Change([current], None)
            delta = self._bump(conn, current.facility, [ReservationChange(
                op="upsert", reservation=merged)])  # fmt: skip
            return Change([merged], delta)

        return self._tx("updating a reservation", body)

    def cancel(self, reservation_id: str) -> Change:
        def body(conn: Connection) -> Change:
            current = self._get(conn, reservation_id, lock=True)
            if current.status == "cancelled":
                return Change([current], None)
            cancelled = current.model_copy(update={"status": "cancelled"})
            delta = self._bump(conn, current.facility, [ReservationChange(
                op="cancel", reservation=cancelled)])  # fmt: skip
            return Change([cancelled], delta)

        return self._tx("cancelling a reservation", body)

    def apply(
        self, conn: Connection, facility: str, changes: list[ReservationChange]
    ) -> ReservationDelta:
        """One change batch inside the caller's write transaction (the booking
        services commit a booking and the devices' copy together)."""
        return self._bump(conn, facility, changes)

    def _bump(
        self, conn: Connection, facility: str, changes: list[ReservationChange]
    ) -> ReservationDelta:
        now = now_utc()
        conn.execute(
            self.db.insert(facilities)
            .values(id=facility, version=0, updated_at=now)
            .on_conflict_do_nothing()
        )
        query = select(facilities.c.version).where(facilities.c.id == facility)
        if self.db.lock_clause():
            query = query.with_for_update()
        prev = int(conn.execute(query).scalar_one())
        version = prev + 1
        conn.execute(
            update(facilities).where(facilities.c.id == facility)
            .values(version=version, updated_at=now)
        )  # fmt: skip
        for change in changes:
            row = _row(change.reservation, version, now)
            stmt = self.db.insert(reservations).values(**row)
            row.pop("created_at")
            conn.execute(stmt.on_conflict_do_update(index_elements=[reservations.c.id], set_=row))
        conn.execute(
            reservation_changes.insert().values(
                facility=facility, version=version, created_at=now,
                changes=[c.model_dump(mode="json") for c in changes],
            )
        )  # fmt: skip
        conn.execute(
            delete(reservation_changes).where(
                reservation_changes.c.facility == facility,
                reservation_changes.c.version <= version - self.keep_versions,
                reservation_changes.c.published_at.is_not(None),
            )
        )
        log.info("reservation change", extra={"facility": facility, "version": version,
                                               "changes": len(changes)})  # fmt: skip
        return ReservationDelta(
            facility=facility, prev_version=prev, version=version, changes=changes
        )

    # reads ------------------------------------------------------------------

    def get(self, reservation_id: str) -> Reservation:
        with self.db.read() as conn:
            return self._get(conn, reservation_id, lock=False)

    def _get(self, conn: Connection, reservation_id: str, *, lock: bool) -> Reservation:
        query = select(reservations).where(reservations.c.id == reservation_id)
        if lock and self.db.lock_clause():
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFoundError(f"no reservation {reservation_id!r}")
        return _reservation(row)

    def list_reservations(
        self,
        *,
        facility: str | None = None,
        door: str | None = None,
        status: str | None = None,
        after: str = "",
        limit: int = 100,
    ) -> list[Reservation]:
        query = select(reservations).where(reservations.c.id > after)
        for column, value in (("facility", facility), ("door", door), ("status", status)):
            if value:
                query = query.where(reservations.c[column] == value)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(reservations.c.id).limit(limit))
            return [_reservation(r) for r in rows]

    def version(self, facility: str) -> int:
        with self.db.read() as conn:
            value = conn.execute(
                select(facilities.c.version).where(facilities.c.id == facility)
            ).scalar()
        return int(value or 0)

    def active_state(self, facility: str) -> tuple[int, list[Reservation]]:
        """(version, active reservations), cached per facility version."""
        version = self.version(facility)
        cached = self._active_cache.get(facility)
        if cached and cached[0] == version:
            return cached
        with self.db.write() as conn:  # one consistent read
            result = self._active(conn, facility)
        self._active_cache[facility] = result
        return result

    def _active(self, conn: Connection, facility: str) -> tuple[int, list[Reservation]]:
        query = select(facilities.c.version).where(facilities.c.id == facility)
        if self.db.lock_clause():
            query = query.with_for_update(read=True)
        version = int(conn.execute(query).scalar() or 0)
        rows = conn.execute(
            select(reservations)
            .where(reservations.c.facility == facility, reservations.c.status == "active")
            .order_by(reservations.c.id)
        )
        return version, [_reservation(r) for r in rows]

    def deltas_since(
        self, facility: str, from_version: int, max_bytes: int = MAX_PAYLOAD_BYTES
    ) -> list[ReservationDelta] | None:
        """Deltas from ``from_version`` to now, each encoded in at most
        ``max_bytes``, or None when a snapshot is needed (the log no longer
        has them, or one version's changes alone exceed ``max_bytes``)."""
        with self.db.read() as conn:
            current = int(conn.execute(
                select(facilities.c.version).where(facilities.c.id == facility)
            ).scalar() or 0)  # fmt: skip
            if from_version > current or current - from_version > self.max_delta_versions:
                return None
            rows = conn.execute(
                select(reservation_changes.c.version, reservation_changes.c.changes)
                .where(reservation_changes.c.facility == facility,
                       reservation_changes.c.version > from_version,
                       reservation_changes.c.version <= current)
                .order_by(reservation_changes.c.version)
            ).all()  # fmt: skip
        if len(rows) != current - from_version:
            return None
        try:
            return _merge(facility, from_version, [(int(v), list(c)) for v, c in rows], max_bytes)
        except OversizedVersion as exc:
            log.warning("catch-up delta over the payload budget: a snapshot instead",
                        extra={"facility": facility, "version": exc.version,
                               "bytes": exc.size, "max_bytes": max_bytes})  # fmt: skip
            return None

    def snapshot(self, facility: str, chunk_size: int, max_bytes: int) -> EncodedSnapshot:
        """The active reservations at one version as the payloads of its chunks
        (one snapshot id): at most ``chunk_size`` reservations and
        ``max_bytes`` bytes each (:mod:`central.reservations.chunks`)."""
        with self.db.write() as conn:  # one consistent read
            version, active = self._active(conn, facility)
        snapshot_id = uuid.uuid4().hex
        payloads = snapshot_payloads(facility, version, snapshot_id, encoded_reservations(active),
                                     budget=max_bytes, max_count=chunk_size)  # fmt: skip
        return EncodedSnapshot(facility, version, snapshot_id, len(active), payloads)

    # publication ------------------------------------------------------------

    def unpublished(self, limit: int = 100) -> list[ReservationDelta]:
        """Committed change batches not yet published, oldest version first."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(reservation_changes)
                .where(reservation_changes.c.published_at.is_(None))
                .order_by(reservation_changes.c.facility, reservation_changes.c.version)
                .limit(limit)
            ).all()
        return [
            ReservationDelta(facility=r.facility, prev_version=r.version - 1, version=r.version,
                             changes=[ReservationChange.model_validate(c) for c in r.changes])
            for r in rows
        ]  # fmt: skip

    def mark_published(self, facility: str, version: int) -> None:
        self._tx("marking a change published", lambda conn: conn.execute(
            update(reservation_changes)
            .where(reservation_changes.c.facility == facility,
                   reservation_changes.c.version == version)
            .values(published_at=now_utc())
        ))  # fmt: skip


class OversizedVersion(CentralError, ValueError):
    """The changes of one version alone do not fit one delta message."""

    def __init__(self, version: int, size: int) -> None:
        super().__init__(f"version {version} takes {size} bytes as a delta")
        self.version = version
        self.size = size


def _merge(
    facility: str,
    from_version: int,
    rows: list[tuple[int, list[dict[str, Any]]]],
    max_bytes: int = MAX_PAYLOAD_BYTES,
) -> list[ReservationDelta]:
    """Consecutive versions merged into deltas, cut between versions so that
    each has at most MAX_CHANGES_PER_DELTA changes and ``max_bytes`` bytes."""
    deltas: list[ReservationDelta] = []
    overhead = delta_overhead(facility)
    prev, pending, pending_bytes = from_version, list[ReservationChange](), overhead
    last = from_version
    for version, raw in rows:
        changes = [ReservationChange.model_validate(c) for c in raw]
        size = sum(change_size(c) for c in changes)
        if overhead + size > max_bytes:
            raise OversizedVersion(version, overhead + size)
        if pending and (len(pending) + len(changes) > MAX_CHANGES_PER_DELTA
                        or pending_bytes + size > max_bytes):  # fmt: skip
            deltas.append(ReservationDelta(facility=facility, prev_version=prev, version=last,
                                           changes=pending))  # fmt: skip
            prev, pending, pending_bytes = last, [], overhead
        pending += changes
        pending_bytes += size
        last = version
    if pending:
        deltas.append(ReservationDelta(facility=facility, prev_version=prev, version=last,
                                       changes=pending))  # fmt: skip
    return deltas


def _row(r: Reservation, version: int, now: datetime) -> dict[str, Any]:
    return {
        "id": r.id, "facility": r.facility, "door": r.door, "starts_at": utc(r.starts_at),
        "ends_at": utc(r.ends_at), "credential_refs": list(r.credential_refs),
        "code_hash": r.code_hash, "status": r.status, "version": version,
        "created_at": now, "updated_at": now,
    }  # fmt: skip


def _reservation(row: Row[Any]) -> Reservation:
    return Reservation(
        id=row.id, facility=row.facility, door=row.door, starts_at=aware(row.starts_at),
        ends_at=aware(row.ends_at), credential_refs=list(row.credential_refs),
        code_hash=row.code_hash, status=row.status,
    )  # fmt: skip
