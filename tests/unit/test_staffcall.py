"""Calling staff from a touchscreen, without a window: the pure phase
decision, the caller's events, the words per phase, both touchscreens'
sessions, the store hand-over from the agent, and the wire model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contracts.mqtt import ProtocolError, StaffCallState, decode, device_topic, encode
from foundation.privacy import check_event_data
from kiosk.touch import staff_texts as st
from kiosk.touch.staffcall import CallPhase, CallStatus, StaffCaller, advance
from sync.config import StaffCallSection
from sync.outbox import Outbox
from sync.staffcall import (
    current_staff_call,
    link_connected,
    record_link,
    record_staff_call,
)
from sync.store import Store, open_store

CALL = "0f8fad5b-d9cb-469f-a165-70867728950e"
OTHER = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
AT = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def remote(state: str, call: str = CALL) -> StaffCallState:
    return StaffCallState(call=call, state=state, at=AT)  # type: ignore[arg-type]


@dataclass
class FakeLink:
    up: bool = True
    state: StaffCallState | None = None

    def connected(self) -> bool:
        return self.up

    def remote(self) -> StaffCallState | None:
        return self.state


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path / "d.db") as opened:
        yield opened


def events(store: Store) -> list[tuple[str, dict[str, object]]]:
    rows = store.query("SELECT type, data FROM outbox ORDER BY seq")
    return [(r["type"], json.loads(r["data"])) for r in rows]


# --- the pure decision ------------------------------------------------------


def test_advance_calling_until_central_answers_or_time_runs_out() -> None:
    start = CallStatus(CALL, CallPhase.CALLING, 100.0)
    assert advance(start, None, True, 105.0, 10.0).phase is CallPhase.CALLING
    assert advance(start, None, True, 110.0, 10.0).phase is CallPhase.UNREACHABLE
    assert advance(start, None, False, 100.5, 10.0).phase is CallPhase.UNREACHABLE


def test_advance_follows_central_and_finishes_when_cleared() -> None:
    start = CallStatus(CALL, CallPhase.CALLING, 100.0)
    alerted = advance(start, remote("open"), True, 101.0, 10.0)
    assert alerted.phase is CallPhase.ALERTED and alerted.confirmed
    on_way = advance(alerted, remote("acknowledged"), True, 102.0, 10.0)
    assert on_way.phase is CallPhase.ON_THE_WAY
    # A dropped link does not undo what central said...
    assert advance(on_way, remote("acknowledged"), False, 103.0, 10.0).phase is on_way.phase
    # ...and the retained message cleared means staff marked it done.
    assert advance(on_way, None, True, 104.0, 10.0).phase is CallPhase.FINISHED


def test_advance_ignores_another_calls_state_and_recovers_from_unreachable() -> None:
    start = CallStatus(CALL, CallPhase.CALLING, 100.0)
    assert advance(start, remote("acknowledged", OTHER), True, 101.0, 10.0).phase is (
        CallPhase.CALLING
    )
    lost = advance(start, None, False, 101.0, 10.0)
    assert lost.phase is CallPhase.UNREACHABLE
    # The device came back and the call got through after all.
    assert advance(lost, remote("open"), True, 130.0, 10.0).phase is CallPhase.ALERTED


# --- the caller ---------------------------------------------------------------


def test_staff_caller_records_call_and_end_without_personal_data(store: Store) -> None:
    link = FakeLink()
    caller = StaffCaller(Outbox(store), link, StaffCallSection(), "checkin", door="room-a",
                         new_id=lambda: CALL)  # fmt: skip
    assert caller.call(1.0).phase is CallPhase.CALLING
    assert caller.call(2.0).call == CALL  # pressed again: the same call goes on
    caller.end("left")
    caller.end("left")  # nothing live: nothing recorded
    recorded = events(store)
    assert recorded == [
        ("kiosk.staff_called", {"call": CALL, "screen": "checkin", "door": "room-a"}),
        ("kiosk.staff_call_ended", {"call": CALL, "reason": "left"}),
    ]
    for _, data in recorded:
        check_event_data(data)


def test_staff_caller_records_no_end_after_staff_finished(store: Store) -> None:
    link = FakeLink(state=None)
    caller = StaffCaller(Outbox(store), link, StaffCallSection(), "issuance", new_id=lambda: CALL)
    caller.call(1.0)
    link.state = remote("open")
    assert caller.poll(2.0).phase is CallPhase.ALERTED  # type: ignore[union-attr]
    link.state = None
    assert caller.poll(3.0).phase is CallPhase.FINISHED  # type: ignore[union-attr]
    caller.end("left")
    assert [e[0] for e in events(store)] == ["kiosk.staff_called"]


def test_staff_words_unreachable_with_and_without_a_configured_place() -> None:
    lost = CallStatus(CALL, CallPhase.UNREACHABLE, 0.0)
    where = StaffCallSection(where="1F 総合案内", phone="0xx-xxx-xxxx")
    words = st.staff_words(lost, where)
    assert (words.title, words.body, words.next_step) == (st.UNREACHABLE, st.GO_TO, st.CALL_PHONE)
    assert words.values == {"where": "1F 総合案内", "phone": "0xx-xxx-xxxx"}
    bare = st.staff_words(lost, StaffCallSection())
    assert (bare.body, bare.next_step) == (st.GO_DEFAULT, "")
    on_way = st.staff_words(CallStatus(CALL, CallPhase.ON_THE_WAY, 0.0), where)
    assert on_way.title == st.ON_THE_WAY and not on_way.body


# --- the agent's hand-over through the store ----------------------------------


def test_store_link_is_connected_only_while_fresh(store: Store) -> None:
    assert not link_connected(store, 1000.0, 90.0)  # the agent never said anything
    record_link(store, True, 1000.0)
    assert link_connected(store, 1089.0, 90.0)
    assert not link_connected(store, 1091.0, 90.0)  # an agent that died says nothing more
    record_link(store, False, 1095.0)
    assert not link_connected(store, 1095.0, 90.0)


def test_store_staff_call_kept_and_cleared(store: Store) -> None:
    state = remote("acknowledged")
    assert record_staff_call(store, encode(state)) == state
    assert current_staff_call(store) == state
    assert record_staff_call(store, b"") is None
    assert current_staff_call(store) is None
    with pytest.raises(ProtocolError):
        record_staff_call(store, b'{"v":1,"call":"x","state":"open","at":"2026-12-06T10:00Z"}')


def test_staff_call_state_contract() -> None:
    assert device_topic("door-1", "staffcall") == "kiosk/v1/devices/door-1/staffcall"
    payload = encode(remote("open"))
    assert decode(StaffCallState, payload).state == "open"
    with pytest.raises(ProtocolError):
        decode(StaffCallState, payload.replace(b'"open"', b'"maybe"'))
    with pytest.raises(ProtocolError):
        decode(StaffCallState, payload[:-1] + b',"by":"tanaka"}')  # no names on the wire


def test_staff_call_acl_covers_every_device_topic_kind() -> None:
    from contracts.mqtt import DEVICE_TOPIC_KINDS
    from deploy.fleet import DEVICE_RECEIVES, DEVICE_SENDS, acl_text

    assert set(DEVICE_SENDS) | set(DEVICE_RECEIVES) == DEVICE_TOPIC_KINDS
    assert not set(DEVICE_SENDS) & set(DEVICE_RECEIVES)
    assert "pattern read kiosk/v1/devices/%u/staffcall" in acl_text({"d1": "f1"})


def test_dashboard_shared_read_queries_once_per_interval_for_all_streams() -> None:
    from central.ops.dashboard.live import SharedRead

    reads: list[int] = []

    def read() -> list[dict[str, object]]:
        reads.append(1)
        return [{"n": len(reads)}]

    shared = SharedRead(read, seconds=3600)
    assert shared() == shared() == [{"n": 1}]  # two pages, one query
    assert len(reads) == 1
    shared.seconds = 0
    assert shared() == [{"n": 2}]  # the interval is over: read again
