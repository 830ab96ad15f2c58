"""Check-ins and no-shows of imported bookings, sent back to the city's
existing booking system as signed JSON from a durable outbox.

* **checked_in**: queued by the ingest worker in the transaction that stores
  a ``checkin.granted`` event whose ``reservation`` is an imported booking
  (:func:`queue_checkins`), so a stored check-in always has its message.
* **no_show**: queued by :func:`sweep_no_shows` (run by ``serve`` every
  ``booking_webhook.every_seconds``) for an imported booking whose start +
  grace has passed with no check-in queued.
* Delivery (:func:`deliver_due`) POSTs each due row with an HMAC-SHA256
  signature over the exact body; a failure sets the next attempt with a
  doubling back-off, and the row stays until the receiver answers 2xx.

``delivery_id`` is derived from the booking and the kind and is unique in
the table: one message per fact, however often it is queued or sent again
(a receiver de-duplicates on it). Messages carry ids, the room, the door,
the kind and a time: never a member.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.engine import Connection

from central.db.engine import Database, aware, utc
from central.db.tables import booking_webhook_outbox as outbox
from central.db.tables import bookings
from central.http_post import PostFailed, post_json

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Kiosk-Signature"
DELIVERY_HEADER = "X-Kiosk-Delivery"
GRANTED = "checkin.granted"
# A no-show older than this when the sweep first sees it is not sent: turning
# the webhook on must not replay months of history.
SWEEP_LOOKBACK = timedelta(days=2)


def delivery_id(booking_id: str, kind: str) -> str:
    return hashlib.sha256(f"{booking_id}:{kind}".encode()).hexdigest()[:32]


def signature(secret: bytes, body: bytes) -> str:
    """The signature header's value: ``sha256=<hex HMAC of the body>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _message(row: Any, kind: str, at: datetime) -> dict[str, Any]:
    return {
        "delivery_id": delivery_id(row.id, kind),
        "booking_external_id": row.external_id,
        "room": row.room,
        "door": row.door,
        "event": kind,
        "at": aware(at).isoformat(),
    }


def _queue(conn: Connection, db_insert: Any, row: Any, kind: str, *, at: datetime,
           now: datetime) -> int:  # fmt: skip
    stmt = db_insert(outbox).values(
        delivery_id=delivery_id(row.id, kind), booking_id=row.id, kind=kind,
        body=_message(row, kind, at), created_at=utc(now), next_attempt_at=utc(now), attempts=0,
    ).on_conflict_do_nothing(index_elements=[outbox.c.delivery_id])  # fmt: skip
    return int(conn.execute(stmt).rowcount or 0)


def queue_checkins(
    conn: Connection, db_insert: Any, stored: Iterable[Mapping[str, Any]], now: datetime
) -> int:
    """Queue ``checked_in`` for new granted check-ins of imported bookings
    (``stored``: event rows just inserted, in the ingest transaction)."""
    first: dict[str, datetime] = {}
    for event in stored:
        data = event.get("data") or {}
        ref = data.get("reservation") if event.get("type") == GRANTED else None
        if isinstance(ref, str) and (ref not in first or event["at"] < first[ref]):
            first[ref] = event["at"]
    if not first:
        return 0
    imported = bookings.c.external_id.is_not(None)
    found = conn.execute(
        select(bookings).where(bookings.c.reservation_id.in_(sorted(first)), imported)
    )
    return sum(_queue(conn, db_insert, row, "checked_in", at=first[row.reservation_id], now=now)
               for row in found)  # fmt: skip


def sweep_no_shows(db: Database, now: datetime, grace: timedelta) -> int:
    """Queue ``no_show`` for imported bookings past start + grace without a
    check-in (nor a no-show) queued; returns how many were queued."""
    queued = select(outbox.c.pk).where(outbox.c.booking_id == bookings.c.id)
    with db.write() as conn:
        due = conn.execute(select(bookings).where(
            bookings.c.external_id.is_not(None), bookings.c.status == "booked",
            bookings.c.starts_at <= utc(now - grace),
            bookings.c.starts_at > utc(now - grace - SWEEP_LOOKBACK),
            ~exists(queued)).order_by(bookings.c.starts_at)).all()  # fmt: skip
        return sum(_queue(conn, db.insert, row, "no_show", at=aware(row.starts_at) + grace,
                          now=now)
                   for row in due)  # fmt: skip


@dataclass(frozen=True)
class WebhookSender:
    url: str
    secret: bytes
    timeout_s: float = 5.0
    retry_first_s: float = 30.0
    retry_max_s: float = 3600.0

    def send(self, body: bytes, delivery: str) -> None:
        headers = {SIGNATURE_HEADER: signature(self.secret, body), DELIVERY_HEADER: delivery}
        post_json(self.url, body, headers, self.timeout_s)

    def backoff(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.retry_max_s, self.retry_first_s * 2 ** (attempts - 1)))


def encode(body: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact, keys sorted."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def deliver_due(db: Database, sender: WebhookSender, now: datetime, limit: int = 50) -> int:
    """Send the due messages oldest first; returns how many were delivered.
    Stops at the first failure: the receiver is likely down for all of them."""
    with db.read() as conn:
        due = conn.execute(select(outbox).where(
            outbox.c.delivered_at.is_(None), outbox.c.next_attempt_at <= utc(now))
            .order_by(outbox.c.next_attempt_at, outbox.c.pk).limit(limit)).all()  # fmt: skip
    delivered = 0
    for row in due:
        try:
            sender.send(encode(row.body), row.delivery_id)
        except PostFailed as exc:
            _failed(db, row.pk, row.attempts + 1, now + sender.backoff(row.attempts + 1), exc)
            return delivered
        with db.write() as conn:
            conn.execute(update(outbox).where(outbox.c.pk == row.pk)
                         .values(delivered_at=utc(now), attempts=row.attempts + 1))  # fmt: skip
        delivered += 1
    return delivered


def _failed(db: Database, pk: int, attempts: int, retry_at: datetime, exc: Exception) -> None:
    log.warning("booking webhook not delivered", extra={"attempts": attempts, "error": str(exc)})
    with db.write() as conn:
        conn.execute(update(outbox).where(outbox.c.pk == pk).values(
            attempts=attempts, next_attempt_at=utc(retry_at),
            last_error=str(exc)[:200]))  # fmt: skip


def pending(db: Database) -> int:
    with db.read() as conn:
        return len(conn.execute(select(outbox.c.pk).where(outbox.c.delivered_at.is_(None))).all())


class HooksLoop:
    """``serve``'s thread: sweep for no-shows, then send what is due."""

    def __init__(self, db: Database, sender: WebhookSender, grace: timedelta, every_s: float,
                 now: Callable[[], datetime]) -> None:  # fmt: skip
        self.db, self.sender, self.grace, self.every_s, self.now = db, sender, grace, every_s, now
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="booking-webhook", daemon=True)

    def start(self) -> HooksLoop:
        self._thread.start()
        return self

    def round(self) -> int:
        now = self.now()
        sweep_no_shows(self.db, now, self.grace)
        return deliver_due(self.db, self.sender, now)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.round()
            except Exception:  # a database hiccup must not end the loop: next round
                log.exception("booking webhook round failed")
            self._stop.wait(self.every_s)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
