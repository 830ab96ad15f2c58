"""Door lockdown on a fake clock (lockctl.machine) and its stored form
(lockctl.lockdown): requested unlocks refused, the exit button still opens,
the door relocks at once, release restores; encoding round trip."""

from __future__ import annotations

import pytest

from lockctl.errors import DoorLockedDown
from lockctl.lockdown import (
    Lockdown,
    LockdownStateError,
    decode,
    doors_in_lockdown,
    encode,
    expand,
)
from lockctl.machine import DoorMachine, DoorTimings, Reason

TIMINGS = DoorTimings(exit_button_debounce_seconds=0.05, exit_button_min_interval_seconds=1.0)
DOWN = Lockdown("intruder reported", "5b0c0000-0000-4000-8000-000000000001", "2026-12-07T09:00:00")


def events(machine: DoorMachine) -> list[tuple[str, dict[str, object]]]:
    return [(e.type, e.data) for e in machine.drain_events()]


def test_lockdown_relocks_at_once_and_refuses_every_requested_unlock() -> None:
    machine = DoorMachine("room-a", TIMINGS)
    machine.unlock(0.0, 10, Reason.CHECK_IN)
    machine.drain_events()
    assert machine.start_lockdown(1.0, DOWN) is True
    assert not machine.relay_on
    assert events(machine) == [
        ("door.locked", {"door": "room-a", "reason": "lockdown", "unlocked_seconds": 1.0}),
        ("door.lockdown", {"door": "room-a", "ref": DOWN.ref, "staff_reason": DOWN.reason}),
    ]
    for reason in (Reason.CHECK_IN, Reason.STAFF, Reason.REMOTE):
        with pytest.raises(DoorLockedDown) as refused:
            machine.unlock(2.0, 5, reason)
        assert refused.value.code == "lockdown"
    assert not machine.relay_on
    assert events(machine) == []
    assert machine.snapshot(2.0)["lockdown"] == {
        "since": DOWN.since, "ref": DOWN.ref, "reason": DOWN.reason,
    }  # fmt: skip


def test_lockdown_exit_button_still_unlocks() -> None:
    machine = DoorMachine("room-a", TIMINGS)
    machine.start_lockdown(0.0, DOWN)
    machine.step(0.1, None, False)
    machine.step(0.2, None, True)
    machine.step(0.3, None, True)
    assert machine.relay_on
    assert ("door.unlocked", "exit_button") in [(t, d.get("reason")) for t, d in events(machine)]


def test_lockdown_twice_keeps_the_first_and_release_restores() -> None:
    machine = DoorMachine("room-a", TIMINGS)
    machine.start_lockdown(0.0, DOWN)
    later = Lockdown("again", "5b0c0000-0000-4000-8000-000000000002", "2026-12-07T10:00:00")
    assert machine.start_lockdown(1.0, later) is False
    assert machine.lockdown == DOWN
    events(machine)
    assert machine.release(2.0, "rel-1") is True
    assert events(machine) == [
        ("door.released", {"door": "room-a", "ref": "rel-1", "lockdown_ref": DOWN.ref})
    ]
    assert machine.release(3.0, "rel-2") is False
    assert machine.unlock(4.0, 5, Reason.CHECK_IN).seconds == 5


def test_lockdown_restored_at_start_emits_nothing_and_refuses() -> None:
    machine = DoorMachine("room-a", TIMINGS)
    machine.restore_lockdown(0.0, DOWN)
    assert events(machine) == []
    with pytest.raises(DoorLockedDown):
        machine.unlock(1.0, 5, Reason.CHECK_IN)


def test_lockdown_state_round_trip_and_expansion() -> None:
    kept = {"room-b": DOWN, "room-a": DOWN}
    assert decode(encode(kept)) == kept
    assert decode(None) == {}
    assert doors_in_lockdown(encode(kept)) == {"room-a", "room-b"}
    assert expand("*", ["room-a", "room-b"]) == ["room-a", "room-b"]
    assert expand("room-b", ["room-a"]) == ["room-b"]


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"v": 2, "doors": {}}',
                                  '{"v": 1, "doors": {"a": {"reason": "x"}}}'])  # fmt: skip
def test_lockdown_damaged_state_refused_and_read_as_every_door(text: str) -> None:
    with pytest.raises(LockdownStateError):
        decode(text)
    assert doors_in_lockdown(text) == {"*"}
