"""How SQLite's failures become the store's typed errors, and the reserve
file's life (on this machine's filesystem)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sync import headroom
from sync.errors import StoreCorruptError, StoreFullError, StoreUnavailableError
from sync.headroom import RECHECK_SECONDS, RECHECK_WRITES, Reserve, disk_report
from sync.store import SQLITE_BUSY, SQLITE_CORRUPT, SQLITE_FULL, _classify, open_store


def sqlite_error(text: str, code: int) -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError(text)
    exc.sqlite_errorcode = code  # what sqlite3 sets from the C result code
    return exc


@pytest.mark.parametrize(
    ("code", "text", "kind", "says"),
    [
        (SQLITE_FULL, "database or disk is full", StoreFullError, "the disk is full"),
        (SQLITE_FULL | (1 << 8), "database or disk is full", StoreFullError, "New events"),
        (SQLITE_BUSY, "database is locked", StoreUnavailableError, "busy timeout"),
        (SQLITE_CORRUPT, "database disk image is malformed", StoreCorruptError, "damaged"),
        (10, "disk I/O error", StoreUnavailableError, "cannot be written"),
    ],
)
def test_store_errors_sqlite_failure_is_typed(
    code: int, text: str, kind: type[Exception], says: str
) -> None:
    error = _classify(Path("/var/lib/city-kiosk/device.db"), sqlite_error(text, code))
    assert type(error) is kind
    assert says in str(error) and "/var/lib/city-kiosk/device.db" in str(error)


def test_store_errors_reserve_created_released_and_reported(tmp_path: Path) -> None:
    reserve = Reserve(tmp_path / "device.db", 64 * 1024)
    assert not reserve.held()
    assert reserve.ready_for_ordinary_write()  # plenty of room: put in place
    assert reserve.path.stat().st_size == 64 * 1024 and reserve.held()
    assert disk_report(tmp_path / "device.db", 64 * 1024)["reserve_held"] is True
    assert reserve.release("test") and not reserve.path.exists()
    assert not reserve.release("test")  # already gone: nothing to do
    assert not reserve.space_low()  # this disk has room for it again
    assert Reserve(tmp_path / "device.db", 0).ready_for_ordinary_write()  # 0: no reserve


def test_store_errors_insert_rolls_back_and_types_the_failure(tmp_path: Path) -> None:
    sql = "INSERT INTO sync_state (key, value) VALUES (?, ?)"
    with open_store(tmp_path / "device.db", reserve_bytes=64 * 1024) as store:
        first = store.insert(sql, ("a", "1"))
        assert store.insert(sql, ("b", "2")) == first + 1  # the new rowid
        with pytest.raises(sqlite3.IntegrityError):  # bad data: the caller's, untyped
            store.insert(sql, ("a", "again"))
        assert not store.conn.in_transaction
        with pytest.raises(StoreUnavailableError) as err:  # SQLite's failure: typed
            store.insert("INSERT INTO no_such_table (x) VALUES (?)", (1,))
        assert "cannot be written" in str(err.value)
        assert not store.conn.in_transaction
        store.reserve.release("test")
        store.reserve.size = 1 << 62  # no disk has room to put it back
        with pytest.raises(StoreFullError):  # refused up front, nothing begun
            store.insert(sql, ("c", "3"))
        assert [r["key"] for r in store.query("SELECT key FROM sync_state")] == ["a", "b"]


def test_store_errors_reserve_looked_at_again_within_a_burst_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [100.0]
    monkeypatch.setattr(headroom, "monotonic", lambda: now[0])
    reserve = Reserve(tmp_path / "device.db", 64 * 1024)
    assert reserve.ready_for_ordinary_write()  # put in place: seen now
    reserve.size = 1 << 62  # from here on no disk has room to put it back
    reserve.path.unlink()  # another process releases it
    # A burst goes on for at most RECHECK_WRITES writes, then looks again.
    burst = [reserve.ready_for_ordinary_write() for _ in range(RECHECK_WRITES)]
    assert burst == [True] * (RECHECK_WRITES - 1) + [False]
    reserve.path.write_bytes(b"")  # back (as another process would put it)
    assert reserve.ready_for_ordinary_write()
    reserve.path.unlink()
    now[0] += RECHECK_SECONDS  # ... or for at most RECHECK_SECONDS
    assert not reserve.ready_for_ordinary_write()
    reserve.path.write_bytes(b"")
    assert reserve.ready_for_ordinary_write()
    assert reserve.release("test")  # this process's own release: refused at once
    assert not reserve.ready_for_ordinary_write()
