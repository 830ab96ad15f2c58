"""The door state machine on a fake clock: deadlines, extension, cap, held
open, forced open with grace, contact bounce, exit button (REX)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lockctl.machine import Debouncer, DoorMachine, DoorState, DoorTimings, Reason

TIMINGS = DoorTimings(
    max_unlock_seconds=30,
    exit_button_seconds=5,
    relock_on_close=True,
    held_open_seconds=10,
    forced_open_grace_seconds=1.0,
    contact_debounce_seconds=0.1,
    exit_button_debounce_seconds=0.05,
    exit_button_min_interval_seconds=1.0,
)


@dataclass
class Door:
    """A machine plus the levels the outside world currently shows it."""

    machine: DoorMachine
    now: float = 0.0
    contact_open: bool = False
    pressed: bool = False
    events: list[tuple[str, dict[str, object]]] = field(default_factory=list)

    def at(self, t: float) -> Door:
        assert t >= self.now
        self.now = t
        self.machine.step(t, self.contact_open, self.pressed)
        self.events += [(e.type, e.data) for e in self.machine.drain_events()]
        return self

    def run_until(self, t: float, every: float = 0.01) -> Door:
        """Sample every ``every`` seconds up to ``t``, like the control loop."""
        start, i = self.now, 1
        while start + i * every < t:
            self.at(start + i * every)
            i += 1
        return self.at(t)

    def unlock(self, seconds: float, reason: Reason = Reason.CHECK_IN) -> float:
        deadline = self.machine.unlock(self.now, seconds, reason).deadline
        self.events += [(e.type, e.data) for e in self.machine.drain_events()]
        return deadline

    def types(self) -> list[str]:
        return [t for t, _ in self.events]


def state_of(machine: DoorMachine) -> DoorState:
    return machine.state  # a call, so mypy does not narrow between steps


def door(**overrides: object) -> Door:
    timings = dataclasses.replace(TIMINGS, **overrides)  # type: ignore[arg-type]
    d = Door(DoorMachine("room-a", timings))
    d.at(0.0)  # first sample: door closed, button released
    return d


def test_machine_relocks_exactly_at_deadline() -> None:
    d = door()
    assert d.unlock(5) == 5.0
    assert d.machine.relay_on and state_of(d.machine) is DoorState.UNLOCKED
    d.at(4.999)
    assert d.machine.relay_on
    d.at(5.0)
    assert not d.machine.relay_on
    assert state_of(d.machine) is DoorState.LOCKED
    assert d.events[-1] == (
        "door.locked",
        {"door": "room-a", "reason": "deadline", "unlocked_seconds": 5.0},
    )


def test_machine_extension_moves_deadline_later_never_earlier() -> None:
    d = door()
    d.unlock(5)
    d.at(3.0)
    assert d.unlock(5) == 8.0
    d.at(4.0)
    assert d.unlock(1) == 8.0  # a shorter grant does not shorten
    unlocked = [data for t, data in d.events if t == "door.unlocked"]
    assert [u["extended"] for u in unlocked] == [False, True, True]
    d.at(7.99)
    assert d.machine.relay_on
    d.at(8.0)
    assert not d.machine.relay_on


def test_machine_caps_every_grant_at_max() -> None:
    d = door()
    grant = d.machine.unlock(0.0, 100, Reason.STAFF)
    assert (grant.deadline, grant.capped) == (30.0, True)
    d.at(20.0)
    grant = d.machine.unlock(20.0, 1000, Reason.STAFF)
    assert grant.deadline == 50.0  # now + max, never beyond
    assert grant.seconds == 30.0
    d.at(49.99)
    assert d.machine.relay_on
    d.at(50.0)
    assert not d.machine.relay_on


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), -float("inf")])
def test_machine_refuses_non_positive_or_non_finite_seconds(bad: float) -> None:
    d = door()
    with pytest.raises(ValueError, match="positive"):
        d.machine.unlock(0.0, bad, Reason.STAFF)
    assert not d.machine.relay_on
    assert d.machine.drain_events() == []


def test_machine_held_open_alarm_at_boundary_and_cleared_on_close() -> None:
    d = door(relock_on_close=False)
    d.unlock(30)
    d.at(1.0)
    d.contact_open = True
    d.run_until(1.2)  # debounced; counts from 1.01, when the level first appeared
    assert state_of(d.machine) is DoorState.OPEN
    assert ("door.opened", {"door": "room-a", "authorised": True}) in d.events
    d.at(11.0)
    assert state_of(d.machine) is DoorState.OPEN  # 9.99 s open
    d.at(11.011)
    assert state_of(d.machine) is DoorState.HELD_OPEN
    assert d.types().count("door.held_open") == 1
    d.run_until(12.0)
    assert d.types().count("door.held_open") == 1  # once, not every tick
    d.contact_open = False
    d.run_until(12.2)
    assert state_of(d.machine) is DoorState.UNLOCKED
    closed = next(data for t, data in d.events if t == "door.closed")
    assert closed["alarm"] == "held_open"


def test_machine_forced_open_while_locked() -> None:
    d = door()
    d.at(5.0)
    d.contact_open = True
    d.run_until(5.2)
    assert state_of(d.machine) is DoorState.FORCED_OPEN
    assert d.types() == ["door.opened", "door.forced_open"]
    assert d.events[0][1]["authorised"] is False
    assert not d.machine.relay_on
    d.contact_open = False
    d.run_until(6.0)
    assert state_of(d.machine) is DoorState.LOCKED
    assert d.events[-1][1]["alarm"] == "forced_open"


@pytest.mark.parametrize(("opens_at", "forced"), [(2.5, False), (2.98, False), (3.01, True)])
def test_machine_forced_open_grace_after_relock(opens_at: float, forced: bool) -> None:
    d = door()
    d.unlock(2)
    d.run_until(2.0)  # relock at 2.0; grace 1.0 -> until 3.0
    assert not d.machine.relay_on
    d.run_until(opens_at)
    d.contact_open = True  # first seen at the next sample, opens_at + 0.01
    d.run_until(opens_at + 0.2)
    assert ("door.forced_open" in d.types()) is forced
    assert state_of(d.machine) is (DoorState.FORCED_OPEN if forced else DoorState.OPEN)


def test_machine_contact_bounce_is_ignored() -> None:
    d = door()
    # A loose reed contact chatters for 0.3 s, never stable for 0.1 s.
    t = 1.0
    for level in [True, False] * 10:
        d.contact_open = level
        t += 0.015
        d.at(t)
    assert d.types() == []
    assert state_of(d.machine) is DoorState.LOCKED
    # Then it really opens: one opening, timed from when it first appeared.
    d.contact_open = True
    d.run_until(t + 0.2)
    assert d.types() == ["door.opened", "door.forced_open"]


def test_machine_missed_edge_cannot_invert_state() -> None:
    # Level sampling: whatever edges were missed, a stable level wins.
    d = door()
    d.contact_open = True
    d.run_until(0.5)
    d.contact_open = False
    d.at(0.52)  # one sample of "closed", never stable
    d.contact_open = True
    d.run_until(1.0)
    assert d.machine.door_open is True
    assert d.types().count("door.opened") == 1
    assert d.types().count("door.closed") == 0


def test_machine_exit_button_unlocks_once_per_press() -> None:
    d = door()
    d.pressed = True
    d.run_until(0.04)
    assert not d.machine.relay_on  # shorter than the 0.05 s minimum press
    d.run_until(0.1)
    assert d.machine.relay_on
    unlocked = [data for t, data in d.events if t == "door.unlocked"]
    assert unlocked == [
        {"door": "room-a", "reason": "exit_button", "seconds": 5.0, "capped": False,
         "extended": False}
    ]  # fmt: skip
    d.run_until(3.0)  # held down: no repeat
    assert d.types().count("door.unlocked") == 1
    d.pressed = False
    d.run_until(3.1)
    d.pressed = True
    d.run_until(3.2)  # a second press after the minimum interval extends
    assert d.types().count("door.unlocked") == 2
    # first sample pressed at 3.11, stable at 3.16: unlocked from then
    assert d.machine.deadline == pytest.approx(3.16 + 5)


def test_machine_exit_button_bounce_and_rapid_repeat() -> None:
    d = door()
    for i in range(10):  # 20 ms bounces: never a 50 ms stable press
        d.pressed = i % 2 == 0
        d.at(0.02 * (i + 1))
    assert not d.machine.relay_on
    d.pressed = True
    d.run_until(0.5)
    d.pressed = False
    d.run_until(0.6)
    d.pressed = True
    d.run_until(0.8)  # second press 0.4 s after the first: rate-limited
    assert d.types().count("door.unlocked") == 1


def test_machine_exit_button_held_at_start_does_not_unlock() -> None:
    m = DoorMachine("room-a", TIMINGS)
    m.step(0.0, False, True)
    m.step(1.0, False, True)
    assert not m.relay_on


def test_machine_relock_on_close_after_opening() -> None:
    d = door()
    d.unlock(20)
    d.at(1.0)
    d.contact_open = True
    d.run_until(3.0)
    assert d.machine.relay_on  # open: stays energised until close or deadline
    d.contact_open = False
    d.run_until(3.2)
    assert not d.machine.relay_on
    locked = [data for t, data in d.events if t == "door.locked"]
    assert locked[0]["reason"] == "door_closed"
    assert state_of(d.machine) is DoorState.LOCKED


def test_machine_without_relock_on_close_waits_for_deadline() -> None:
    d = door(relock_on_close=False)
    d.unlock(5)
    d.contact_open = True
    d.run_until(1.0)
    d.contact_open = False
    d.run_until(2.0)
    assert d.machine.relay_on
    d.run_until(5.0)
    assert not d.machine.relay_on


def test_machine_deadline_passes_while_open_is_not_forced() -> None:
    d = door()
    d.unlock(2)
    d.contact_open = True
    d.run_until(4.0)
    assert not d.machine.relay_on
    assert state_of(d.machine) is DoorState.OPEN
    assert "door.forced_open" not in d.types()


def test_machine_door_open_at_start_raises_no_alarm_but_held_open_later() -> None:
    m = DoorMachine("room-a", TIMINGS)
    m.step(0.0, True, False)
    assert state_of(m) is DoorState.OPEN
    assert m.drain_events() == []
    m.step(10.0, True, False)
    assert state_of(m) is DoorState.HELD_OPEN


def test_machine_next_due_is_the_one_timer() -> None:
    d = door()
    assert d.machine.next_due() is None
    d.unlock(5)
    assert d.machine.next_due() == 5.0
    d.at(1.0)
    d.contact_open = True
    d.at(1.02)
    assert d.machine.next_due() == pytest.approx(1.12)  # debounce settles
    d.at(1.12)
    assert d.machine.next_due() == 5.0  # deadline before held-open (11.02)


def test_machine_doors_have_independent_timers() -> None:
    a, b = door(), door()
    a.unlock(5)
    b.at(3.0)
    b.unlock(5)
    a.at(5.0)
    b.at(5.0)
    assert (a.machine.relay_on, b.machine.relay_on) == (False, True)
    b.at(8.0)
    assert not b.machine.relay_on


def test_debouncer_counts_from_first_appearance() -> None:
    deb = Debouncer(0.1)
    assert deb.sample(0.0, False) is None
    assert deb.sample(1.0, True) is None
    assert deb.due() == pytest.approx(1.1)
    assert deb.sample(1.1, True) == 1.0
    assert deb.stable is True


operations = st.lists(
    st.tuples(
        st.floats(0, 3),  # time step
        st.sampled_from(["unlock", "lock", "step"]),
        st.floats(0.01, 200),  # seconds
        st.booleans(),  # contact open
        st.booleans(),  # button
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_machine_invariants_hold_for_any_sequence(
    ops: list[tuple[float, str, float, bool, bool]],
) -> None:
    m = DoorMachine("room-a", TIMINGS)
    now = 0.0
    for dt, op, seconds, contact, button in ops:
        now += dt
        if op == "unlock":
            grant = m.unlock(now, seconds, Reason.REMOTE)
            assert grant.deadline <= now + TIMINGS.max_unlock_seconds + 1e-9
        elif op == "lock":
            m.lock(now)
            assert not m.relay_on
        m.step(now, contact, button)
        assert m.relay_on == (m.deadline is not None)
        if m.deadline is not None:
            assert now < m.deadline <= now + TIMINGS.max_unlock_seconds + 1e-9
        for event in m.drain_events():
            assert event.type.startswith("door.")
            assert event.data["door"] == "room-a"
        assert m.state in set(DoorState)
