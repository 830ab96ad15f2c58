"""The staff reservation pages through the test client on a real SQLite
database, signed in as staff: the grid, walk-ins, move, cancel, closures,
the member page (revoke, enrolment code, revocation window), the audit
trail, and a viewer who may change nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from central.ingest.store import IngestStore
from central.reservations import audit
from central.reservations.rules import Closure
from contracts.mqtt import Health, Status
from tests.harness.booking import CARD_A, FACILITY, ROOM, BookingWorld, today_plus
from tests.harness.staff_site import StaffSite, sign_in, staff_site

pytestmark = pytest.mark.integration


@pytest.fixture
def site(tmp_path: Path) -> Iterator[StaffSite]:
    with staff_site(tmp_path) as opened:
        yield opened


def day2() -> str:
    return today_plus(2, 0).date().isoformat()


def test_staff_grid_renders_bookings_and_closures(
    site: tuple[TestClient, BookingWorld, dict[str, str]],
) -> None:
    client, world, secrets = site
    alice = world.member("alice")
    world.bookings.create(ROOM, today_plus(2, 10), today_plus(2, 12), member_id=alice, actor="t")
    world.places.add_closure(FACILITY, Closure(starts_at=today_plus(2, 15),
                             ends_at=today_plus(2, 17), kind="maintenance"), "t")  # fmt: skip
    assert client.get(f"/facilities/{FACILITY}", follow_redirects=False).status_code == 303
    sign_in(client, world, "view", secrets["view"])
    day = client.get(f"/facilities/{FACILITY}?day={day2()}").text
    assert "10:00–12:00 Member alice" in day
    assert day.count('class="closed') == 2  # 15:00 and 16:00 shaded, 17:00 open again
    week = client.get(f"/facilities/{FACILITY}?view=week&day={day2()}").text
    assert "Member alice" in week and "Maintenance" in week
    nxt = client.get(f"/facilities/{FACILITY}?view=week&day={(today_plus(9, 0).date())}").text
    assert "Member alice" not in nxt


def test_staff_walk_in_shows_the_code_once(
    site: tuple[TestClient, BookingWorld, dict[str, str]],
) -> None:
    client, world, secrets = site
    csrf = sign_in(client, world, "op", secrets["op"])
    form = {"csrf": csrf, "room": ROOM, "day": day2(), "start": "13:00", "end": "14:00",
            "walk_in": "1"}  # fmt: skip
    page = client.post(f"/facilities/{FACILITY}/bookings", data=form)
    match = re.search(r'id="reservation-code">(\d{6})<', page.text)
    assert page.status_code == 200 and match
    [booking] = world.bookings.list_bookings(facility=FACILITY)
    assert booking.member_id is None and booking.has_code
    assert match.group(1) not in client.get(f"/bookings/{booking.id}").text
    assert match.group(1) not in client.get(f"/facilities/{FACILITY}?day={day2()}").text
    entry = audit.entries(world.db, subject=f"booking:{booking.id}")[0]
    assert (entry.actor, entry.action) == ("staff:op", "booking.created")


def test_staff_books_for_a_member_moves_cancels_and_closes(
    site: tuple[TestClient, BookingWorld, dict[str, str]],
) -> None:
    client, world, secrets = site
    world.member("hanako")
    world.member("jiro")
    csrf = sign_in(client, world, "op", secrets["op"])
    form = {"csrf": csrf, "room": ROOM, "day": day2(), "start": "10:00", "end": "11:00",
            "member": "hanako@example.jp"}  # fmt: skip
    assert client.post(f"/facilities/{FACILITY}/bookings", data=form,
                       follow_redirects=False).status_code == 303  # fmt: skip
    taken = client.post(f"/facilities/{FACILITY}/bookings", data={**form, "member": "member J"})
    assert taken.status_code == 409 and 'data-code="slot_taken"' in taken.text
    [booking] = world.bookings.list_bookings(facility=FACILITY)
    move = {"csrf": csrf, "room": ROOM, "day": day2(), "start": "18:00", "end": "19:00"}
    client.post(f"/bookings/{booking.id}/move", data=move)
    assert world.bookings.get(booking.id).starts_at == today_plus(2, 18)
    late = client.post(f"/bookings/{booking.id}/cancel", data={"csrf": csrf})
    assert 'data-code="cancellation_deadline_passed"' in late.text
    no_reason = client.post(f"/bookings/{booking.id}/cancel", data={"csrf": csrf, "override": "1"})
    assert no_reason.status_code == 409
    client.post(f"/bookings/{booking.id}/cancel",
                data={"csrf": csrf, "override": "1", "reason": "pipe burst"})  # fmt: skip
    assert world.bookings.get(booking.id).status == "cancelled"
    closure = {"csrf": csrf, "kind": "holiday", "first": day2(), "last": day2(), "room": ""}
    client.post(f"/facilities/{FACILITY}/closures", data=closure)
    [closed] = world.places.closures(FACILITY, today_plus(2, 0))
    client.post(f"/closures/{closed.id}/delete", data={"csrf": csrf})
    assert world.places.closures(FACILITY, today_plus(2, 0)) == []
    trail = client.get(f"/audit?facility={FACILITY}").text
    actions = re.findall(r"<td>staff:op</td><td>([a-z._]+)</td>", trail)
    assert actions == ["closure.removed", "closure.added", "booking.cancelled", "booking.moved",
                       "booking.created"]  # fmt: skip
    assert "reason=pipe burst" in client.get(f"/audit?booking={booking.id}").text


def test_staff_member_page_revokes_issues_a_code_and_shows_the_revocation_window(
    site: tuple[TestClient, BookingWorld, dict[str, str]],
) -> None:
    client, world, secrets = site
    member = world.member("taro")
    card = world.enrol(member, CARD_A)
    world.bookings.create(ROOM, today_plus(3, 10), today_plus(3, 11), member_id=member, actor="t")
    ingest = IngestStore(world.db, "test")
    for device, online in (("door-1", True), ("door-2", False)):
        ingest.register_device(device, FACILITY)
        ingest.record_status(device, Status(state="online", session=1))
        ingest.record_health(device, Health(at=world.clock(), session=1,
                                            reservation_version=100))  # fmt: skip
        if not online:
            ingest.record_status(device, Status(state="offline", session=1))
    csrf = sign_in(client, world, "op", secrets["op"])
    client.post(f"/members/{member}/cards/{card}/revoke", data={"csrf": csrf})
    [revoked] = [c for c in world.members.cards(member) if c.id == card]
    assert revoked.status == "revoked" and revoked.revoked_by == "staff:op"
    entry = audit.entries(world.db, subject=f"card:{card}")[0]
    version = entry.detail["versions"][FACILITY]
    # door-1 catches up; door-2 stays offline at the version before.
    ingest.record_health("door-1", Health(at=world.clock(), session=1,
                                          reservation_version=version))  # fmt: skip
    ingest.record_health("door-2", Health(at=world.clock(), session=1,
                                          reservation_version=version - 1))  # fmt: skip
    ingest.record_status("door-2", Status(state="offline", session=1))
    page = client.get(f"/members/{member}").text
    assert 'id="behind-door-2"' in page and 'id="behind-door-1"' not in page
    assert 'id="behind-door-2"' in client.get(f"/facilities/{FACILITY}").text
    issued = client.post(f"/members/{member}/enrolment-code", data={"csrf": csrf})
    match = re.search(r'id="enrolment-code">(\d{8})<', issued.text)
    assert match and match.group(1) not in client.get(f"/members/{member}").text
    client.post(f"/members/{member}/status", data={"csrf": csrf, "status": "suspended"})
    assert world.members.get(member).status == "suspended"
    assert [e.actor for e in audit.entries(world.db, subject=f"member:{member}")][:2] == [
        "staff:op", "staff:op"]  # fmt: skip
    assert "Member taro" in client.get("/members?q=member%20T").text


def test_staff_viewer_cannot_change_anything(
    site: tuple[TestClient, BookingWorld, dict[str, str]],
) -> None:
    client, world, secrets = site
    member = world.member("ken")
    card = world.enrol(member, CARD_A)
    made = world.bookings.create(ROOM, today_plus(3, 10), today_plus(3, 11), member_id=member,
                                 actor="t")  # fmt: skip

    def changes() -> int:  # the sign-in and the refusals are audited too (admins' log)
        return sum(e.action.startswith(audit.RESERVATION_ACTIONS)
                   for e in audit.entries(world.db, limit=1000))  # fmt: skip

    before = changes()
    csrf = sign_in(client, world, "view", secrets["view"])
    page = client.get(f"/members/{member}").text
    assert "revoke-" not in page and "issue-code" not in page
    attempts = [
        (f"/facilities/{FACILITY}/bookings", {"room": ROOM, "day": day2(), "start": "13:00",
                                             "end": "14:00", "walk_in": "1"}),
        (f"/bookings/{made.booking.id}/cancel", {"override": "1", "reason": "x"}),
        (f"/bookings/{made.booking.id}/move", {"room": ROOM, "day": day2(), "start": "13:00",
                                              "end": "14:00"}),
        (f"/facilities/{FACILITY}/closures", {"kind": "holiday", "first": day2(),
                                             "last": day2()}),
        (f"/members/{member}/cards/{card}/revoke", {}),
        (f"/members/{member}/enrolment-code", {}),
        (f"/members/{member}/status", {"status": "suspended"}),
    ]  # fmt: skip
    for path, form in attempts:
        assert client.post(path, data={"csrf": csrf, **form}).status_code == 403, path
    assert changes() == before
    refused = [e for e in audit.entries(world.db, limit=1000) if e.action == "dashboard.request"]
    assert {(e.actor, e.outcome, e.reason) for e in refused} == {("staff:view", "refused", "role")}
    assert sorted(e.subject for e in refused) == sorted(path[:80] for path, _ in attempts)
    assert "/members/{member_id}/cards/{card_id}/revoke" in {e.detail["route"] for e in refused}
    assert world.bookings.get(made.booking.id).status == "booked"


def test_staff_pages_speak_japanese(
    site: tuple[TestClient, BookingWorld, dict[str, str]],
) -> None:
    client, world, secrets = site
    sign_in(client, world, "view", secrets["view"])
    page = client.get(f"/facilities/{FACILITY}?lang=ja&view=week").text
    assert "未反映の端末" in page and "すべての端末が反映済みです" not in page  # door-1: no report
    assert "操作履歴" in client.get("/audit?lang=ja").text
