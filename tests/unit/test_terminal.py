"""The headless door terminal's loop with fake ports and a real outbox."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from kiosk.cards import CardSeen
from kiosk.checkin.access import Policy, Reservation
from kiosk.checkin.service import CheckinService
from kiosk.checkin.terminal import DoorTerminal
from kiosk.errors import LockUnavailable
from sync.outbox import Outbox
from sync.store import open_store
from tests.harness.services import wait_until
from tests.unit.test_checkin import KEY, NOW, FakeLock, FakeReservations


@dataclass
class FakeSignals:
    played: list[str] = field(default_factory=list)

    def signal(self, door: str, pattern: str) -> None:
        if pattern == "broken":
            raise LockUnavailable("no buzzer")
        self.played.append(pattern)


class ExplodingReservations(FakeReservations):
    def for_credential(self, ref: str, now: datetime) -> list[Reservation]:
        if ref == "boom":
            raise RuntimeError("unexpected")
        return super().for_credential(ref, now)


def test_terminal_serves_cards_from_another_thread(tmp_path: Path) -> None:
    booking = Reservation("res-1", "room-a", NOW - timedelta(minutes=5), NOW + timedelta(hours=1))
    with open_store(tmp_path / "d.db") as store:
        service = CheckinService(
            door="room-a", facility="gym", policy=Policy(),
            reservations=ExplodingReservations(by_ref={"cr1_ok": [booking]}), lock=FakeLock(),
            outbox=Outbox(store), code_key=KEY, now=lambda: NOW, clock_trusted=lambda: True,
        )  # fmt: skip
        signals = FakeSignals()
        terminal = DoorTerminal(service, signals)
        loop = threading.Thread(target=terminal.run)
        loop.start()
        for card in [
            CardSeen("cr1_ok", "member"), CardSeen("boom", "member"), CardSeen(None, "unknown"),
            CardSeen(None, "unreadable", readable=False), CardSeen("cr1_nobody", "mynumber"),
        ]:  # fmt: skip
            threading.Thread(target=terminal.post, args=(card,)).start()
        wait_until(lambda: len(signals.played) == 5, 5, "five cards served")
        terminal.stop()
        loop.join(5)
        assert not loop.is_alive()
        assert sorted(signals.played) == sorted(["granted", "error", "denied", "error", "denied"])
        assert terminal.served == 4  # the exploding lookup was survived, not served
        types = [r["type"] for r in store.query("SELECT type FROM outbox")]
        assert types.count("checkin.granted") == 1 and types.count("checkin.denied") == 3
