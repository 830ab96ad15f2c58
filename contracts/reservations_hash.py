"""Shared, pure functions for reservation sync: the active-window hash
(anti-entropy) and the reservation-code hash. Devices and central must give
the same answer for the same data on any machine, so both import these.

Active window hash ``v1`` (the algorithm documented in ``docs/protocol.md``,
which the device agent implements in ``sync/reservations.py``):

1. ``start`` = a time rounded down to the hour, in Unix seconds; ``hours``
   = the window length; the window is ``[start, start + hours*3600)``;
2. take the reservations with status ``active`` that overlap the window
   (``starts_at < end`` and ``ends_at > start``), sorted by id;
3. for each, the UTF-8 line
   ``id TAB door TAB starts_at TAB ends_at TAB code_hash TAB refs LF``, times
   in whole Unix seconds, ``code_hash`` empty when absent, ``refs`` the sorted
   credential references joined by ``,``;
4. the hash string is ``v1:<start>:<hours>:<sha256 hex of all lines>``.

The window is part of the string, so central recomputes exactly the window a
device used (:func:`same_content`), whatever its own clock says.

Reservation codes (what a user types at a door) are stored and sent only as
``ch1_`` + HMAC-SHA256(facility code key, ``code:<facility>:<code>``) -- the
form ``kiosk.checkin.service.reservation_code_hash`` computes on the device; a
short code under an unkeyed hash could be reversed by trying every code.

A facility's code key is :func:`facility_code_key` of the fleet's code master
key: central holds the master (``reservations.code_key_file``), the fleet
machine derives each device's key into its bundle (``reader.code_key_file``),
so a device holds only its own facility's key (docs/provisioning.md, "Keys").
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

DEFAULT_WINDOW_HOURS = 24
MAX_WINDOW_HOURS = 24 * 366


class ReservationLike(Protocol):
    """What the hash reads (``contracts.mqtt.Reservation`` fits)."""

    @property
    def id(self) -> str: ...
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


def window_hash(reservations: Iterable[ReservationLike], start: int, hours: int) -> str:
    """The ``v1`` hash of the active reservations overlapping the window."""
    end = start + hours * 3600
    lines = []
    for r in reservations:
        starts, ends = int(r.starts_at.timestamp()), int(r.ends_at.timestamp())
        if r.status == "active" and starts < end and ends > start:
            refs = ",".join(sorted(r.credential_refs))
            lines.append(
                (r.id, f"{r.id}\t{r.door}\t{starts}\t{ends}\t{r.code_hash or ''}\t{refs}\n")
            )
    digest = hashlib.sha256()
    for _, line in sorted(lines):
        digest.update(line.encode())
    return f"v1:{start}:{hours}:{digest.hexdigest()}"


def active_hash(
    reservations: Iterable[ReservationLike], now: float, hours: int = DEFAULT_WINDOW_HOURS
) -> str:
    """The hash of the window starting at ``now`` (Unix seconds) rounded down to the hour."""
    return window_hash(reservations, int(now) // 3600 * 3600, hours)


def parse_window(reported: str) -> tuple[int, int] | None:
    """``(start, hours)`` of a reported ``v1`` hash, or None if malformed."""
    parts = reported.split(":")
    if len(parts) != 4 or parts[0] != "v1" or len(parts[3]) != 64:
        return None
    try:
        start, hours = int(parts[1]), int(parts[2])
    except ValueError:
        return None
    if start % 3600 or not 1 <= hours <= MAX_WINDOW_HOURS:
        return None
    return start, hours


def same_content(reported: str, reservations: Iterable[ReservationLike]) -> bool:
    """Whether a device's reported hash matches ``reservations`` for its window.
    A malformed hash never matches (the device then gets a snapshot)."""
    window = parse_window(reported)
    if window is None:
        return False
    return hmac.compare_digest(reported, window_hash(reservations, *window))


class WindowHashes:
    """:func:`same_content` for many reports about few facilities.

    Central checks every device's health report against its facility's
    reservations; the hash of a facility is the same for all of its devices
    until its version or the hour's window changes, so it is computed once
    per facility, version and window instead of once per report.
    """

    def __init__(self) -> None:
        self._memo: dict[str, tuple[int, tuple[int, int], str]] = {}

    def same_content(
        self,
        facility: str,
        version: int,
        reported: str,
        reservations: Iterable[ReservationLike],
    ) -> bool:
        window = parse_window(reported)
        if window is None:
            return False
        cached = self._memo.get(facility)
        if cached is None or cached[0] != version or cached[1] != window:
            cached = (version, window, window_hash(reservations, *window))
            self._memo[facility] = cached
        return hmac.compare_digest(reported, cached[2])


CODE_KEY_LABEL = b"city-kiosk/facility-code-key/v1\x00"


def facility_code_key(master: bytes, scope: str) -> bytes:
    """The code key of one facility (or another scope, e.g. enrolment codes):
    HMAC-SHA256(master, label || scope). One-way: a facility's key reveals
    neither the master nor another facility's key."""
    if not scope:
        raise ValueError("empty code key scope")
    return hmac.new(master, CODE_KEY_LABEL + scope.encode(), hashlib.sha256).digest()


def code_hash(key: bytes, facility: str, code: str) -> str:
    """The stored form of a reservation code (see module docstring)."""
    if not code:
        raise ValueError("empty reservation code")
    digest = hmac.new(key, f"code:{facility}:{code}".encode(), hashlib.sha256).hexdigest()
    return f"ch1_{digest}"
