"""Shared, pure functions for reservation sync: the active-set hash and the
reservation-code hash. Devices and central both use them, so they must give
the same answer for the same data on any machine.

``active_hash(reservations)`` -- anti-entropy check (issue 5): a device
reports its reservation version and this hash (``Health.reservation_hash``,
``ResyncRequest.active_hash``); when the versions agree but the hashes do not,
central sends a full snapshot.

Definition (version prefix ``v1:``):

1. take the reservations whose ``status`` is ``"active"`` (cancelled ones are
   left out, whether the device keeps them or deletes them);
2. for each, one line of ``\\x1f``-separated fields: id, facility, door,
   ``starts_at`` and ``ends_at`` in UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``,
   the credential references sorted and joined with ``,``, and ``code_hash``
   (empty when none);
3. sort the lines (by id first, as the id is the first field), join them with
   ``\\n`` and take SHA-256 of the UTF-8 bytes; the hash is ``"v1:" + hex``.

The empty set hashes to ``v1:`` + SHA-256 of the empty string.

``hash_code(code)`` / ``verify_code(code, code_hash)`` -- a reservation code
(what a user types at the door) is stored and sent only as
``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>``; a device checks a typed
code against it offline.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Protocol

HASH_PREFIX = "v1:"
CODE_SCHEME = "pbkdf2_sha256"
CODE_ITERATIONS = 20_000
_SEP = "\x1f"


class ReservationLike(Protocol):
    """What the hash reads (``sync.protocol.Reservation`` fits)."""

    @property
    def id(self) -> str: ...
    @property
    def facility(self) -> str: ...
    @property
    def door(self) -> str: ...
    @property
    def starts_at(self) -> datetime: ...
    @property
    def ends_at(self) -> datetime: ...
    @property
    def credential_refs(self) -> list[str]: ...
    @property
    def code_hash(self) -> str | None: ...
    @property
    def status(self) -> str: ...


def _utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("naive datetime in a reservation: times must carry an offset")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def reservation_line(r: ReservationLike) -> str:
    """The canonical line of one reservation (step 2 above)."""
    refs = ",".join(sorted(r.credential_refs))
    fields = [r.id, r.facility, r.door, _utc(r.starts_at), _utc(r.ends_at), refs, r.code_hash or ""]
    return _SEP.join(fields)


def active_hash(reservations: Iterable[ReservationLike]) -> str:
    """The ``v1:`` hash of the active reservations (see module docstring)."""
    lines = sorted(reservation_line(r) for r in reservations if r.status == "active")
    return HASH_PREFIX + hashlib.sha256("\n".join(lines).encode()).hexdigest()


def hash_code(code: str, *, salt: bytes | None = None, iterations: int = CODE_ITERATIONS) -> str:
    """Hash a reservation code for storage and transport (never store it plain)."""
    if not code:
        raise ValueError("empty reservation code")
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", code.encode(), salt, iterations)
    return f"{CODE_SCHEME}${iterations}${salt.hex()}${digest.hex()}"


def verify_code(code: str, code_hash: str) -> bool:
    """True when ``code`` matches ``code_hash``; False for any other input."""
    try:
        scheme, iterations, salt_hex, digest_hex = code_hash.split("$")
        rounds = int(iterations)
        salt = bytes.fromhex(salt_hex)
        expected = bytes.fromhex(digest_hex)
    except ValueError:
        return False
    if scheme != CODE_SCHEME or not 1 <= rounds <= 10_000_000 or not code:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", code.encode(), salt, rounds)
    return hmac.compare_digest(digest, expected)
