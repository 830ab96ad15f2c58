"""What check-in needs from the world, as Protocols.

The lock controller opens the door (:class:`LockPort`) and, at a door
terminal without a screen, plays the buzzer/LED patterns
(:class:`SignalPort`); the device store answers which reservations a
credential or code holds (:class:`ReservationSource`). The real sides are
:class:`kiosk.checkin.wiring.LockctlPort` (both lock ports) and
:class:`kiosk.checkin.reservations.StoreReservations`; tests use fakes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from kiosk.checkin.access import Reservation


class LockPort(Protocol):
    def unlock(self, door: str, seconds: float, reason: str, ref: str) -> float:
        """Unlock ``door``; returns the seconds it will stay unlocked. Raises
        :class:`~kiosk.errors.DoorInLockdown` for a door in lockdown and
        :class:`~kiosk.errors.LockUnavailable` when it did not unlock."""


class LockdownSource(Protocol):
    def closed(self, door: str) -> bool:
        """Is ``door`` in lockdown (what lockctl keeps in the device store)?"""


class SignalPort(Protocol):
    def signal(self, door: str, pattern: str) -> None:
        """Play a buzzer/LED pattern: granted, denied or error."""


class ReservationSource(Protocol):
    def for_credential(self, ref: str, now: datetime) -> list[Reservation]: ...

    def for_code(self, code_hash: str, now: datetime) -> list[Reservation]: ...

    def cache_age(self, now: datetime) -> timedelta | None: ...
