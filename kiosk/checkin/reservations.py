"""The reservation cache, read side: what the check-in decision needs from the
device store (the sync agent writes it).

Lookups are by credential reference or code hash, limited to reservations
that end after ``now - 1 day`` and start before ``now + 7 days`` so "too
early, opens at ..." and "ended" can be told apart. Both use indexes.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timedelta, tzinfo

from kiosk.checkin.access import Reservation
from sync.reservations import ReservationCache
from sync.store import Store

log = logging.getLogger(__name__)

LOOK_BACK = timedelta(days=1)
LOOK_AHEAD = timedelta(days=7)


class StoreReservations:
    """:class:`kiosk.checkin.ports.ReservationSource` over the device store."""

    def __init__(self, store: Store, timezone: tzinfo) -> None:
        self.store = store
        self.timezone = timezone
        self.skipped_rows = 0

    def for_credential(self, ref: str, now: datetime) -> list[Reservation]:
        return self._rows(
            "SELECT r.id, r.door, r.starts_at, r.ends_at, r.status FROM reservation_credentials c"
            " JOIN reservations r ON r.id = c.reservation_id"
            " WHERE c.credential_ref = ? AND r.ends_at > ? AND r.starts_at < ?",
            ref,
            now,
        )

    def for_code(self, code_hash: str, now: datetime) -> list[Reservation]:
        return self._rows(
            "SELECT id, door, starts_at, ends_at, status FROM reservations"
            " WHERE code_hash = ? AND ends_at > ? AND starts_at < ?",
            code_hash,
            now,
        )

    def cache_age(self, now: datetime) -> timedelta | None:
        """Time since the sync agent last applied or confirmed the cache
        (:meth:`sync.reservations.ReservationCache.applied_at`); None = never."""
        applied = ReservationCache(self.store, "").applied_at()
        return None if applied is None else now - datetime.fromtimestamp(applied, self.timezone)

    def _rows(self, sql: str, key: str, now: datetime) -> list[Reservation]:
        low = int((now - LOOK_BACK).timestamp())
        high = int((now + LOOK_AHEAD).timestamp())
        try:
            rows = self.store.query(sql, (key, low, high))
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"reservation cache unreadable: {exc}") from exc
        found: list[Reservation] = []
        for row in rows:
            reservation = self._parse(row)
            if reservation is not None:
                found.append(reservation)
        return found

    def _moment(self, value: object) -> datetime | None:
        try:
            return datetime.fromtimestamp(int(value), self.timezone)  # type: ignore[call-overload]
        except (TypeError, ValueError, OverflowError, OSError):
            return None

    def _parse(self, row: sqlite3.Row) -> Reservation | None:
        starts, ends = self._moment(row["starts_at"]), self._moment(row["ends_at"])
        if starts is None or ends is None or ends <= starts:
            # A damaged row must not decide anything, nor stop the terminal.
            self.skipped_rows += 1
            log.warning("corrupt reservation row skipped", extra={"reservation": str(row["id"])})
            return None
        return Reservation(
            str(row["id"]), str(row["door"]), starts, ends, cancelled=row["status"] == "cancelled"
        )
