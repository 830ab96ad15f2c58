"""The j1 -> j2 transition of My Number Card references on a device
(docs/cardreader.md, "Card references and migration").

* :func:`known_refs_in` answers the card service's question "does this
  device hold this reference?" from the reservation cache, so that a card
  still enrolled under its legacy ``j1`` reference keeps matching.
* :func:`alias_reporter_for` tells central, after such a match, the card's
  ``j2`` reference (``POST /api/enrolment/aliases``); central adds it to the
  same member's card and the next reservation delta brings it to every
  device, so from then on the card costs 3 APDUs again. Best effort, on a
  thread of its own: a report that fails is made again at the next tap.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from cardreader.service import KnownRefs
from contracts.enrolment import BASE_PATH, AliasIn, AliasOut
from kiosk.central_https import HttpsJsonClient
from kiosk.errors import CentralError
from sync.config import DeviceConfig
from sync.errors import ConfigError

log = logging.getLogger(__name__)
AliasReporter = Callable[[str, str], None]


def known_refs_in(store_path: Path) -> KnownRefs:
    """Does the device's reservation cache hold this card reference? Asked
    only when a My Number Card's ``j2`` reference is unknown. A read-only
    connection per question, so the card feed's thread never shares the
    check-in loop's; an unreadable cache answers "no" (and logs)."""

    def known(ref: str) -> bool:
        try:
            conn = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True, timeout=1.0)
            try:
                row = conn.execute(
                    "SELECT 1 FROM reservation_credentials WHERE credential_ref = ? LIMIT 1",
                    (ref,),
                ).fetchone()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            log.warning("reservation cache not readable", extra={"error": str(exc)})
            return False
        return row is not None

    return known


class AliasCentral(HttpsJsonClient):
    """``POST /aliases`` of the enrolment contract (any refusal is a failure
    to report: the next tap reports again)."""

    base_path = BASE_PATH

    def add_alias(self, alias: AliasIn) -> AliasOut:
        return self._call("POST", "/aliases", AliasOut, alias)


def report_alias(central: AliasCentral, legacy: str, new: str) -> str | None:
    """Send one alias; the status central answered, None if it failed."""
    try:
        status = central.add_alias(AliasIn(legacy_ref=legacy, credential_ref=new)).status
    except (CentralError, ValueError) as exc:
        log.warning("card alias not reported; the next tap tries again",
                    extra={"error": type(exc).__name__})  # fmt: skip
        return None
    finally:
        central.close()
    log.info("card alias reported", extra={"status": status})
    return status


def alias_reporter_for(config: DeviceConfig) -> AliasReporter | None:
    """A reporter to central, or None when the device has no ``central.url``
    (the legacy match still works; the card stays on the long read)."""
    try:
        AliasCentral.for_device(config, "card reference migration").close()
    except ConfigError:
        return None

    def report(legacy: str, new: str) -> None:
        central = AliasCentral.for_device(config, "card reference migration")
        threading.Thread(
            target=report_alias, args=(central, legacy, new), name="card-alias", daemon=True
        ).start()

    return report
