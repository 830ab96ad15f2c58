"""The j1 -> j2 transition of My Number Card references on a device
(docs/cardreader.md, "Card references and migration").

:func:`known_refs_in` answers the card service's question "does this device
hold this reference?" from the reservation cache, so that a card still
enrolled under its legacy ``j1`` reference keeps matching (with the whole
certificate read) until its member re-enrols it or its certificate is
renewed. The device never tells central about the pair: central cannot
check that two references come from one certificate, so only an enrolment
(a member's code, then the card on the reader) adds a reference to a member.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from cardreader.service import KnownRefs

log = logging.getLogger(__name__)


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
