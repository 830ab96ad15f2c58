"""Central's storage on both backends: a SQLite file and a real PostgreSQL
(started by the test run). Same code, same expectations."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.pool import QueuePool

from central.api.tokens import TokenStore
from central.db.engine import Database
from central.db.tables import event_quarantine, events, issuance_counters
from central.errors import ConflictError, NotFoundError
from central.ingest.store import IngestStore
from central.reservations.store import ReservationStore
from contracts.mqtt import (
    MAX_PAYLOAD_BYTES,
    EventBatch,
    Reservation,
    ReservationSnapshotChunk,
    Status,
    decode,
)

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def db(central_db: Database) -> Database:
    """Every test here runs on SQLite and on PostgreSQL (conftest's central_db)."""
    return central_db


def batch(device: str, seqs: list[int], **data: object) -> EventBatch:
    return EventBatch.model_validate({
        "device": device,
        "events": [{"id": str(uuid.uuid4()), "seq": s, "type": "door.opened", "at": T0,
                    "clock_trusted": True, "data": {"door": "room-a", **data}} for s in seqs],
    })  # fmt: skip


def count(db: Database, table: object = events) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_ingest_store_duplicates_never_duplicate_rows(db: Database) -> None:
    store = IngestStore(db, "w1")
    first = batch("dev-a", [1, 2, 3])
    out = store.store_batches([first])
    assert out.stored == 3 and out.duplicates == 0
    again = store.store_batches([first, first])
    assert again.stored == 0 and again.duplicates == 6  # every resent event counts
    assert sorted(again.acks["dev-a"]) == sorted([e.id for e in first.events] * 2)
    assert count(db) == 3


def test_ingest_store_out_of_order_tracks_gaps(db: Database) -> None:
    store = IngestStore(db, "w1")
    out = store.store_batches([batch("dev-a", [4, 5])])
    assert out.gaps_opened == [("dev-a", (1, 3))]
    store.store_batches([batch("dev-a", [1, 2, 3])])
    (device,) = store.list_devices()
    assert (device["contiguous_seq"], device["max_seq"], device["gaps"]) == (5, 5, [])
    assert device["events_total"] == 5


def test_ingest_store_quarantines_personal_data_and_still_acks(db: Database) -> None:
    store = IngestStore(db, "w1")
    bad = batch("dev-a", [1], full_name="山田太郎")
    out = store.store_batches([bad])
    assert out.quarantined == 1 and out.stored == 0
    assert out.acks == {"dev-a": [bad.events[0].id]}
    assert count(db) == 0 and count(db, event_quarantine) == 1
    with db.read() as conn:
        row = conn.execute(select(event_quarantine)).one()
    assert "山田" not in str(row.envelope) and "full_name" in row.reason
    assert store.store_batches([bad]).duplicates == 1


def test_ingest_store_late_will_of_older_session_is_ignored(db: Database) -> None:
    store = IngestStore(db, "w1")
    assert store.record_status("dev-a", Status(state="online", session=1))
    assert store.record_status("dev-a", Status(state="online", session=2, versions={"sync": "1"}))
    assert not store.record_status("dev-a", Status(state="offline", session=1))
    (device,) = store.list_devices()
    assert (device["status"], device["session"]) == ("online", 2)
    assert store.record_status("dev-a", Status(state="offline", session=2))
    (device,) = store.list_devices()
    assert device["status"] == "offline" and device["versions"] == {"sync": "1"}


def test_ingest_store_query_events_filters_and_pages(db: Database) -> None:
    store = IngestStore(db, "w1")
    store.store_batches([batch("dev-a", [1, 2, 3]), batch("dev-b", [1])])
    page = store.query_events(device="dev-a", limit=2)
    assert [e["seq"] for e in page] == [1, 2]
    rest = store.query_events(device="dev-a", after=page[-1]["pk"], limit=2)
    assert [e["seq"] for e in rest] == [3]
    assert len(store.query_events(types=["door.opened"], since=T0, until=T0 + timedelta(1))) == 4
    assert store.query_events(since=T0 + timedelta(seconds=1)) == []


def reservation(rid: str, **kw: object) -> Reservation:
    return Reservation.model_validate({
        "id": rid, "facility": "fac-1", "door": "room-a", "starts_at": T0,
        "ends_at": T0 + timedelta(hours=1), **kw})  # fmt: skip


def test_reservation_store_versions_deltas_and_snapshot(db: Database) -> None:
    store = ReservationStore(db, keep_versions=3)
    assert store.create(reservation("r1")).delta.version == 1  # type: ignore[union-attr]
    store.create(reservation("r2"))
    change = store.update("r1", {"door": "room-b"})
    assert change.delta is not None and (change.delta.prev_version, change.delta.version) == (2, 3)
    assert store.update("r1", {"door": "room-b"}).delta is None  # no change, no version
    store.cancel("r2")
    assert store.cancel("r2").delta is None
    assert store.version("fac-1") == 4
    deltas = store.deltas_since("fac-1", 1)
    assert deltas is not None and len(deltas) == 1
    assert (deltas[0].prev_version, deltas[0].version) == (1, 4)
    assert [c.op for c in deltas[0].changes] == ["upsert", "upsert", "cancel"]
    # Nothing was published yet, so nothing was pruned.
    assert store.deltas_since("fac-1", 0) is not None
    for delta in store.unpublished():
        store.mark_published(delta.facility, delta.version)
    store.create(reservation("r3"))  # version 5 prunes versions <= 2
    assert store.deltas_since("fac-1", 0) is None
    assert store.deltas_since("fac-1", 2) is not None
    snapshot = store.snapshot("fac-1", chunk_size=1, max_bytes=MAX_PAYLOAD_BYTES)
    chunks = [decode(ReservationSnapshotChunk, p) for p in snapshot.payloads]
    assert [c.chunk for c in chunks] == [0, 1] and {c.version for c in chunks} == {5}
    snap = [r for c in chunks for r in c.reservations]
    assert sorted(r.id for r in snap) == ["r1", "r3"]
    version, active = store.active_state("fac-1")
    assert version == 5 and sorted(r.id for r in active) == ["r1", "r3"]


def test_reservation_store_refuses_bad_changes(db: Database) -> None:
    store = ReservationStore(db)
    store.create(reservation("r1"))
    with pytest.raises(ConflictError):
        store.create(reservation("r1"))
    with pytest.raises(NotFoundError):
        store.cancel("nope")
    store.cancel("r1")
    with pytest.raises(ConflictError, match="cancelled"):
        store.update("r1", {"door": "room-c"})
    with pytest.raises(ConflictError):
        store.update("r1", {"facility": "fac-2"})


def test_tokens_are_stored_hashed_and_revocable(db: Database) -> None:
    tokens = TokenStore(db)
    token_id, token = tokens.create("operator", "test")
    assert tokens.verify(token) == "operator"
    assert tokens.verify(token + "x") is None
    with db.read() as conn:
        assert token not in str(conn.exec_driver_sql("SELECT * FROM api_tokens").all())
    tokens.revoke(token_id)
    assert tokens.verify(token) is None


def _durability(db: Database, conn: Connection) -> str:
    setting = "PRAGMA synchronous" if db.dialect == "sqlite" else "SHOW synchronous_commit"
    return str(conn.exec_driver_sql(setting).scalar())


def test_database_undurable_write_commits_and_leaves_the_connection_durable(
    db: Database,
) -> None:
    durable = {"sqlite": "2", "postgresql": "on"}[db.dialect]  # synchronous=FULL / on
    with db.write(durable=False) as conn:
        assert _durability(db, conn) != durable
        conn.execute(issuance_counters.insert().values(year=2026, last=1))
    with pytest.raises(ValueError), db.write(durable=False) as conn:
        conn.execute(issuance_counters.insert().values(year=2027, last=1))
        raise ValueError("rolled back")
    pool = db.engine.pool
    assert isinstance(pool, QueuePool) and pool.checkedin() == 1  # the next one is that one
    with db.read() as conn:
        assert _durability(db, conn) == durable
        rows = conn.execute(select(issuance_counters.c.year)).scalars().all()
    assert rows == [2026]
