"""Check-in service with fake ports and a real outbox on a temp store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from contracts.reservations_hash import code_hash as reservation_code_hash
from kiosk.checkin.access import Policy, Reservation
from kiosk.checkin.messages import result_message
from kiosk.checkin.service import CheckinService, Outcome
from kiosk.errors import DoorInLockdown, LockUnavailable
from kiosk.i18n import available_languages, translate, translations
from sync.outbox import Outbox
from sync.store import Store, open_store

TOKYO = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=TOKYO)
KEY = b"k" * 32


@dataclass
class FakeLock:
    calls: list[tuple[str, float, str, str]] = field(default_factory=list)
    broken: bool = False

    def unlock(self, door: str, seconds: float, reason: str, ref: str) -> float:
        if self.broken:
            raise LockUnavailable("lockctl socket refused")
        self.calls.append((door, seconds, reason, ref))
        return seconds


@dataclass
class FakeReservations:
    by_ref: dict[str, list[Reservation]] = field(default_factory=dict)
    by_code: dict[str, list[Reservation]] = field(default_factory=dict)
    age: timedelta | None = timedelta(minutes=2)
    fail: bool = False

    def for_credential(self, ref: str, now: datetime) -> list[Reservation]:
        if self.fail:
            raise ValueError("reservation cache unreadable")
        return self.by_ref.get(ref, [])

    def for_code(self, code_hash: str, now: datetime) -> list[Reservation]:
        return self.by_code.get(code_hash, [])

    def cache_age(self, now: datetime) -> timedelta | None:
        return self.age


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path / "device.db") as s:
        yield s


def service(store: Store, lock: FakeLock, reservations: FakeReservations) -> CheckinService:
    return CheckinService(
        door="room-a", facility="gym", policy=Policy(), reservations=reservations, lock=lock,
        outbox=Outbox(store), code_key=KEY, now=lambda: NOW, clock_trusted=lambda: True,
        staff_refs=frozenset({"cr1_staff"}),
    )  # fmt: skip


def events(store: Store) -> list[tuple[str, dict[str, object]]]:
    return [
        (r["type"], json.loads(r["data"]))
        for r in store.query("SELECT type, data FROM outbox ORDER BY seq")
    ]


def now_booking(door: str = "room-a") -> Reservation:
    return Reservation("res-1", door, NOW - timedelta(minutes=5), NOW + timedelta(hours=1))


def test_checkin_card_granted_unlocks_and_records(store: Store) -> None:
    lock = FakeLock()
    result = service(
        store, lock, FakeReservations(by_ref={"cr1_abc": [now_booking()]})
    ).present_credential("cr1_abc")
    assert result.outcome is Outcome.GRANTED
    assert lock.calls == [("room-a", 5.0, "check-in", "cr1_abc")]
    assert events(store) == [
        ("checkin.granted", {"door": "room-a", "reason": "reservation", "via": "card",
                             "ref": "cr1_abc", "reservation": "res-1", "unlock_seconds": 5.0}),
    ]  # fmt: skip


def test_checkin_denied_does_not_unlock(store: Store) -> None:
    lock = FakeLock()
    result = service(store, lock, FakeReservations()).present_credential("cr1_nobody")
    assert result.outcome is Outcome.DENIED and result.reason == "not_registered"
    assert lock.calls == []
    assert events(store)[0][0] == "checkin.denied"


def test_checkin_lock_unavailable_is_reported(store: Store) -> None:
    lock = FakeLock(broken=True)
    result = service(
        store, lock, FakeReservations(by_ref={"r": [now_booking()]})
    ).present_credential("r")
    assert result.outcome is Outcome.LOCK_UNAVAILABLE
    assert events(store)[0] == (
        "checkin.failed",
        {
            "door": "room-a",
            "reason": "lock_unavailable",
            "via": "card",
            "ref": "r",
            "reservation": "res-1",
        },
    )


def test_checkin_corrupt_cache_denies_and_keeps_serving(store: Store) -> None:
    svc = service(store, FakeLock(), FakeReservations(fail=True))
    assert svc.present_credential("r").reason == "not_registered"
    assert svc.present_credential("r").reason == "not_registered"


def test_checkin_code_hashed_with_key_and_facility(store: Store) -> None:
    code_hash = reservation_code_hash(KEY, "gym", "482913")
    assert code_hash != reservation_code_hash(KEY, "pool", "482913")
    assert "482913" not in code_hash
    lock = FakeLock()
    svc = service(store, lock, FakeReservations(by_code={code_hash: [now_booking()]}))
    result = svc.enter_code("482913")
    assert result.outcome is Outcome.GRANTED and result.via == "code"
    assert lock.calls[0][3] == "code"
    assert "482913" not in json.dumps(events(store))


def test_checkin_code_lockout_recorded(store: Store) -> None:
    svc = service(store, FakeLock(), FakeReservations())
    reasons = [svc.enter_code("000000").reason for _ in range(5)]
    assert reasons == ["not_registered"] * 4 + ["code_locked"]
    assert events(store)[-1][1]["reason"] == "code_locked"


def test_checkin_staff_card(store: Store) -> None:
    lock = FakeLock()
    result = service(store, lock, FakeReservations()).present_credential("cr1_staff")
    assert result.outcome is Outcome.GRANTED and lock.calls[0][2] == "staff"


def test_checkin_unknown_card_recorded(store: Store) -> None:
    svc = service(store, FakeLock(), FakeReservations())
    assert svc.card_not_usable(readable=True).outcome is Outcome.UNKNOWN_CARD
    assert svc.card_not_usable(readable=False).outcome is Outcome.UNREADABLE_CARD
    assert [e[0] for e in events(store)] == ["checkin.denied", "checkin.denied"]


@pytest.mark.parametrize("language", ["ja", "en"])
def test_messages_every_result_translated(store: Store, language: str) -> None:
    svc = service(store, FakeLock(), FakeReservations(by_ref={
        "soon": [Reservation("s", "room-a", NOW + timedelta(hours=2), NOW + timedelta(hours=3))],
        "other": [now_booking("room-b")],
    }))  # fmt: skip
    results = [
        svc.present_credential("soon"), svc.present_credential("other"),
        svc.present_credential("nobody"), svc.card_not_usable(True), svc.card_not_usable(False),
    ]  # fmt: skip
    names = {"room-a": "Room A", "room-b": "Room B"}
    for result in results:
        message = result_message(result, names, TOKYO)
        for text in (message.title, message.body, message.next_step):
            shown = translate(language, text, **message.values)
            assert shown and "{" not in shown
            if language == "ja":
                assert shown != text, f"untranslated: {text}"
    too_early = result_message(results[0], names, TOKYO)
    assert translate("ja", too_early.next_step, **too_early.values) == "11:50から入れます。"


def test_i18n_catalogues_complete() -> None:
    import re

    kiosk = Path(__file__).resolve().parents[2] / "kiosk"
    ids: set[str] = set()
    modules = ("touch/texts.py", "touch/staff_texts.py", "checkin/messages.py")
    for module in (kiosk / name for name in modules):
        ids |= set(re.findall(r'N_\(\s*"((?:[^"\\]|\\.)*)"\s*\)', module.read_text()))
    assert len(ids) > 20  # both files were read
    assert available_languages()[0] == "ja"
    for language in available_languages():
        catalogue = translations(language)
        for message in ids:
            assert catalogue.gettext(message), f"{language} lacks {message!r}"


@dataclass
class LockedDownLock(FakeLock):
    def unlock(self, door: str, seconds: float, reason: str, ref: str) -> float:
        raise DoorInLockdown("door 'room-a' is in lockdown")


def test_checkin_lockdown_refusal_keeps_door_locked_and_says_entrance_closed(
    store: Store,
) -> None:
    result = service(
        store, LockedDownLock(), FakeReservations(by_ref={"r": [now_booking()]})
    ).present_credential("r")
    assert result.outcome is Outcome.LOCKDOWN
    assert result.unlocked_seconds == 0
    assert events(store)[0] == (
        "checkin.denied",
        {"door": "room-a", "reason": "lockdown", "via": "card", "ref": "r",
         "reservation": "res-1"},
    )  # fmt: skip
    words = result_message(result, {"room-a": "Room A"}, TOKYO)
    assert words.title == "This entrance is closed" and not words.success
    assert translate("en", words.body, **words.values) == (
        "Staff have closed Room A for now. The door stays locked."
    )
    assert "閉鎖" in translate("ja", words.title)


def test_checkin_entrance_closed_read_from_the_store_lockctl_writes(store: Store) -> None:
    from kiosk.checkin.wiring import StoreLockdown
    from lockctl.lockdown import STATE_KEY, Lockdown, encode

    checkin = service(store, FakeLock(), FakeReservations())
    checkin.lockdown = StoreLockdown(store)
    assert checkin.entrance_closed() is False
    down = Lockdown("drill", "5b0c0000-0000-4000-8000-000000000001", "2026-12-07T09:00:00")
    store.set_state(STATE_KEY, encode({"room-a": down}))
    assert checkin.entrance_closed() is True
    store.set_state(STATE_KEY, encode({"room-b": down}))
    assert checkin.entrance_closed() is False
    store.set_state(STATE_KEY, "damaged")  # unreadable: said closed, never inviting a tap
    assert checkin.entrance_closed() is True
