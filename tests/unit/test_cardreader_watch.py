"""The watcher's bookkeeping when readers come and go, over a scripted PC/SC.

The real pcscd + vpcd cannot unplug a reader (vpcd's readers are fixed by
configuration), so this unit test plays the PC/SC answers of an unplug and
replug; the integration tests cover pcscd restarts with the real daemon.
"""

from __future__ import annotations

import queue
from typing import Any

import pytest
from smartcard import scard as real_scard

from cardreader import watch
from cardreader.watch import CardEvent, CardWatcher

PRESENT = real_scard.SCARD_STATE_PRESENT | real_scard.SCARD_STATE_CHANGED
EMPTY = real_scard.SCARD_STATE_EMPTY | real_scard.SCARD_STATE_CHANGED


class ScriptedPcsc:
    """Stands in for ``smartcard.scard``: reader lists and states from a script."""

    def __init__(self) -> None:
        self.readers: list[str] = []
        self.states: dict[str, int] = {}
        self.service = True

    def __getattr__(self, name: str) -> Any:
        return getattr(real_scard, name)  # constants

    def SCardEstablishContext(self, scope: int) -> tuple[int, int]:
        return (real_scard.SCARD_S_SUCCESS if self.service else real_scard.SCARD_E_NO_SERVICE, 1)

    def SCardReleaseContext(self, context: int) -> int:
        return 0

    def SCardListReaders(self, context: int, groups: list[str]) -> tuple[int, list[str]]:
        if not self.service:
            return real_scard.SCARD_E_NO_SERVICE, []
        if not self.readers:
            return real_scard.SCARD_E_NO_READERS_AVAILABLE, []
        return real_scard.SCARD_S_SUCCESS, list(self.readers)

    def SCardGetStatusChange(
        self, context: int, timeout: int, states: list[tuple[str, int]]
    ) -> tuple[int, list[tuple[str, int, list[int]]]]:
        out = [(name, self.states.get(name, 0), [0x3B]) for name, _ in states]
        return real_scard.SCARD_S_SUCCESS, out


@pytest.fixture
def pcsc(monkeypatch: pytest.MonkeyPatch) -> ScriptedPcsc:
    fake = ScriptedPcsc()
    monkeypatch.setattr(watch, "scard", fake)
    return fake


def drain(events: queue.Queue[CardEvent]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    while not events.empty():
        event = events.get_nowait()
        out.append((event.kind, event.reader))
    return out


def test_watch_reader_unplugged_and_back(pcsc: ScriptedPcsc) -> None:
    events: queue.Queue[CardEvent] = queue.Queue()
    watcher = CardWatcher(events)
    pcsc.readers, pcsc.states = ["R"], {"R": PRESENT}
    assert watcher._step()
    assert drain(events) == [("reader_added", "R"), ("inserted", "R")]
    pcsc.readers = []  # unplugged with the card on it
    assert watcher._step()
    assert drain(events) == [("removed", "R"), ("reader_removed", "R")]
    pcsc.readers, pcsc.states = ["R"], {"R": EMPTY}
    assert watcher._step()
    assert drain(events) == [("reader_added", "R")]


def test_watch_service_lost_and_restored(pcsc: ScriptedPcsc) -> None:
    events: queue.Queue[CardEvent] = queue.Queue()
    watcher = CardWatcher(events)
    pcsc.readers, pcsc.states = ["R"], {"R": PRESENT}
    watcher._step()
    drain(events)
    pcsc.service = False
    assert not watcher._step()
    assert not watcher._step()  # reported once, not on every retry
    assert drain(events) == [("removed", "R"), ("reader_removed", "R"), ("service_lost", "")]
    pcsc.service = True
    assert watcher._step()
    assert drain(events) == [("service_restored", ""), ("reader_added", "R"), ("inserted", "R")]


def test_watch_full_queue_drops_and_counts(pcsc: ScriptedPcsc) -> None:
    events: queue.Queue[CardEvent] = queue.Queue(maxsize=1)
    watcher = CardWatcher(events)
    pcsc.readers, pcsc.states = ["R"], {"R": PRESENT}
    watcher._step()
    assert watcher.dropped == 1 and events.qsize() == 1
