"""Publishes committed reservation changes on ``facilities/{f}/reservations``.

The change log is the outbox: a change batch is committed first (with its new
facility version), then this publisher's own thread sends unpublished
change-log rows in version order, waits for the broker's PUBACK and marks
each published. A crash between commit and publish only delays the delta (it
is sent at the next start); devices that missed one see a version gap and
ask for a resync. ``notify()`` is what the API calls after a commit.

A change batch whose delta does not fit one packet (its encoding is over the
payload budget of ``broker.max_packet_bytes``, e.g. a bulk import) is not
published as it is: the broker would disconnect the publisher and every later
delta would wait behind it. It cannot be split either (a delta is one version,
applied atomically). Instead an empty delta *announcing* the version is
published (``prev_version == version``, no changes): every device behind it
sees a gap and asks for a resync, which central answers with the byte-chunked
snapshot (the catch-up delta does not fit either). The row is marked
published and one structured line logged.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy.exc import SQLAlchemyError

from central import mqtt as central_mqtt
from central.config import BrokerSection
from central.errors import CentralError
from central.reservations.chunks import payload_budget
from central.reservations.store import ReservationStore
from contracts.mqtt import ReservationDelta, encode, facility_reservations_topic

log = logging.getLogger(__name__)
PUBACK_TIMEOUT = 10.0


class DeltaPublisher:
    def __init__(self, store: ReservationStore, broker: BrokerSection, client_id: str) -> None:
        self.store = store
        self.broker = broker
        self.published = 0
        self.announced = 0  # oversized deltas replaced by a resync announcement
        self.budget = payload_budget(broker.max_packet_bytes)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self.client = central_mqtt.make_client(broker, client_id)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self._thread = threading.Thread(target=self._run, name="delta-publisher", daemon=True)

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if not reason.is_failure:
            self._connected.set()
            self._wake.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, _r: ReasonCode, _p: Any) -> None:
        self._connected.clear()

    def start(self) -> None:
        central_mqtt.start(self.client, self.broker)
        self._thread.start()

    def notify(self) -> None:
        """A change was committed: publish soon (callable from any thread)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(5.0)
            self._wake.clear()
            if self._stop.is_set() or not self._connected.is_set():
                continue
            try:
                self.publish_pending()
            except (CentralError, SQLAlchemyError) as exc:
                log.error("publishing reservation deltas failed", extra={"error": str(exc)[:300]})
            except Exception:  # the publisher thread must survive: retried on the next wake
                log.exception("publishing reservation deltas failed")

    def publish_pending(self) -> int:
        """Send every unpublished change in version order; returns how many."""
        sent = 0
        while not self._stop.is_set():
            pending = self.store.unpublished(limit=100)
            if not pending:
                return sent
            for delta in pending:
                topic = facility_reservations_topic(delta.facility)
                info = self.client.publish(topic, self._payload(delta), qos=1)
                try:
                    info.wait_for_publish(PUBACK_TIMEOUT)
                except (RuntimeError, ValueError) as exc:
                    log.warning("delta not published yet", extra={"error": str(exc)})
                    return sent
                if not info.is_published():
                    return sent
                self.store.mark_published(delta.facility, delta.version)
                self.published += 1
                sent += 1
        return sent

    def _payload(self, delta: ReservationDelta) -> bytes:
        payload = encode(delta)
        if len(payload) <= self.budget:
            return payload
        self.announced += 1
        log.warning(
            "delta over the payload budget: announced, devices resync by snapshot",
            extra={"facility": delta.facility, "version": delta.version,
                   "changes": len(delta.changes), "bytes": len(payload),
                   "max_bytes": self.budget},
        )  # fmt: skip
        return encode(announcement(delta))

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(5)
        central_mqtt.stop(self.client)


def announcement(delta: ReservationDelta) -> ReservationDelta:
    """An empty delta at ``delta.version`` that takes no device there: a
    device behind it has a gap (``prev_version`` is not its version) and
    resyncs; one already there ignores it (``version`` is not newer)."""
    return ReservationDelta(
        facility=delta.facility, prev_version=delta.version, version=delta.version, changes=[]
    )
