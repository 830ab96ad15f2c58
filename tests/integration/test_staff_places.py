"""The staff pages for facility settings and rooms through the test client
on a real SQLite database, signed in as staff: create and edit a room, the
facility's hours, each validation error shown on the form, the door id of a
room with bookings, a viewer who may change nothing, the audit entries, and
the residents' availability following the new hours."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from central.reservations import audit
from tests.harness.booking import DOOR, FACILITY, ROOM, today_plus
from tests.harness.staff_site import StaffSite, sign_in, staff_site

pytestmark = pytest.mark.integration
Site = StaffSite
HOURS = {f"hours_{d}": "09:00-21:00" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
RULES = {"slot_minutes": "30", "min_duration_minutes": "30", "max_duration_minutes": "90",
         "max_days_ahead": "14", "cancellation_deadline_hours": "48",
         "max_active_bookings": "2", "max_hours_per_week": ""}  # fmt: skip


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with staff_site(tmp_path) as opened:
        yield opened


def error_of(html: str, field: str) -> str:
    match = re.search(rf'id="error-{field}">([^<]*)<', html)
    assert match, f"no error shown for {field}"
    return match.group(1)


def room_form(csrf: str, **changes: str) -> dict[str, str]:
    return {"csrf": csrf, "room_id": "studio", "name": "Studio", "door_id": "studio-door",
            "fee_per_slot_yen": "300", **RULES, **changes}  # fmt: skip


def test_staff_room_create_and_edit(site: Site) -> None:
    client, world, secrets = site
    csrf = sign_in(client, world, "op", secrets["op"])
    grid = client.get(f"/facilities/{FACILITY}").text
    assert f'href="/facilities/{FACILITY}/rooms"' in grid
    assert f'href="/facilities/{FACILITY}/settings"' in grid
    form = client.get(f"/facilities/{FACILITY}/rooms/new").text
    assert "bookings of this room open this door" in form
    made = client.post(f"/facilities/{FACILITY}/rooms/new", data=room_form(csrf),
                       follow_redirects=False)  # fmt: skip
    assert made.status_code == 303
    room = world.places.room("studio")
    assert (room.door_id, room.fee_per_slot_yen) == ("studio-door", 300)
    assert room.rules.slot_minutes == 30
    assert room.rules.max_active_bookings == 2 and room.rules.max_hours_per_week is None
    assert room.opening_hours is None
    assert "studio-door" in client.get(f"/facilities/{FACILITY}/rooms").text
    own = {**HOURS, "own_hours": "1", "hours_sun": "", "hours_sat": "10:00-12:00, 13:00-17:00"}
    edit = room_form(csrf, name="Studio B", fee_per_slot_yen="450", **own)
    del edit["room_id"]
    client.post(f"/facilities/{FACILITY}/rooms/studio", data=edit)
    room = world.places.room("studio")
    assert (room.name, room.fee_per_slot_yen) == ("Studio B", 450)
    assert room.opening_hours is not None and "sun" not in room.opening_hours.weekly
    assert len(room.opening_hours.weekly["sat"]) == 2
    page = client.get(f"/facilities/{FACILITY}/rooms/studio").text
    assert 'value="10:00-12:00, 13:00-17:00"' in page and "checked" in page
    again = client.post(f"/facilities/{FACILITY}/rooms/new", data=room_form(csrf))
    assert again.status_code == 422 and "exists already" in error_of(again.text, "room_id")


def test_staff_room_each_validation_error_on_the_form(site: Site) -> None:
    client, world, secrets = site
    csrf = sign_in(client, world, "op", secrets["op"])
    cases = {
        "room_id": ({"room_id": "Studio 1"}, "Lowercase letters"),
        "door_id": ({"door_id": "Door_1"}, "Lowercase letters"),
        "name": ({"name": ""}, "Required."),
        "fee_per_slot_yen": ({"fee_per_slot_yen": "-1"}, "At least 0."),
        "slot_minutes": ({"slot_minutes": "abc"}, "Enter a whole number."),
        "max_days_ahead": ({"max_days_ahead": "400"}, "At most 366."),
        "max_duration_minutes": ({"max_duration_minutes": "100"}, "whole number of slots"),
        "min_duration_minutes": ({"min_duration_minutes": "120"}, "longer than the maximum"),
        "max_active_bookings": ({"max_active_bookings": "0"}, "At least 1."),
        "hours_mon": ({"own_hours": "1", "hours_mon": "09:00-25:00"}, "25:00 is not a time"),
        "hours_tue": ({"own_hours": "1", "hours_tue": "09:00-13:00, 12:00-17:00"}, "overlap"),
        "hours_wed": ({"own_hours": "1", "hours_wed": "17:00-09:00"}, "close after it opens"),
        "hours_thu": ({"own_hours": "1", "hours_thu": "nine to five"}, "09:00-17:00"),
    }  # fmt: skip
    for field, (changes, words) in cases.items():
        page = client.post(f"/facilities/{FACILITY}/rooms/new", data=room_form(csrf, **changes))
        assert page.status_code == 422, field
        assert words in error_of(page.text, field), field
        assert 'id="form-errors"' in page.text
    assert [r.id for r in world.places.rooms(FACILITY)] == [ROOM]
    ja = client.post(f"/facilities/{FACILITY}/rooms/new?lang=ja",
                     data=room_form(csrf, hours_mon="09:00-25:00", own_hours="1"))  # fmt: skip
    assert "25:00 は 00:00 から 24:00 までの時刻ではありません。" in ja.text


def test_staff_room_door_change_refused_while_bookings_open_it(site: Site) -> None:
    client, world, secrets = site
    world.bookings.create(ROOM, today_plus(3, 10), today_plus(3, 11), member_id=world.member(),
                          actor="t")  # fmt: skip
    csrf = sign_in(client, world, "op", secrets["op"])
    edit = room_form(csrf, name="Gym A", door_id="new-door")
    page = client.post(f"/facilities/{FACILITY}/rooms/{ROOM}", data=edit)
    assert page.status_code == 422
    assert f"1 bookings that have not ended open door {DOOR}" in error_of(page.text, "door_id")
    assert world.places.room(ROOM).door_id == DOOR
    client.post(f"/facilities/{FACILITY}/rooms/{ROOM}", data={**edit, "door_id": DOOR})
    assert world.places.room(ROOM).rules.slot_minutes == 30  # the rest may change


def test_staff_facility_hours_edit_and_errors(site: Site) -> None:
    client, world, secrets = site
    csrf = sign_in(client, world, "op", secrets["op"])
    day = today_plus(3, 0).date()
    before = [s.starts_at for s in world.bookings.availability(ROOM, day)]
    assert before[0] == today_plus(3, 9)
    weekday = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[day.weekday()]
    form = {"csrf": csrf, "name": "Sports centre Kita", "address": "1-2-3 Kita",
            "timezone": "Asia/Tokyo", **HOURS,
            f"hours_{weekday}": "13:00-15:00, 18:00-20:00"}  # fmt: skip
    saved = client.post(f"/facilities/{FACILITY}/settings", data=form, follow_redirects=False)
    assert saved.status_code == 303
    facility = world.places.facility(FACILITY)
    assert facility.name == "Sports centre Kita" and facility.address == "1-2-3 Kita"
    after = [s.starts_at for s in world.bookings.availability(ROOM, day)]
    assert after == [today_plus(3, h) for h in (13, 14, 18, 19)]  # the residents' site's slots
    page = client.get(f"/facilities/{FACILITY}/settings").text
    assert 'value="13:00-15:00, 18:00-20:00"' in page
    bad = {**form, "timezone": "Mars/Olympus", "hours_mon": "09:00-12:00, 11:00-13:00",
           "hours_tue": "08:00-25:00", "name": ""}  # fmt: skip
    page = client.post(f"/facilities/{FACILITY}/settings?lang=en", data=bad)
    assert page.status_code == 422
    assert "Unknown time zone" in error_of(page.text, "timezone")
    assert "overlap" in error_of(page.text, "hours_mon")
    assert "25:00 is not a time" in error_of(page.text, "hours_tue")
    assert "Required." in error_of(page.text, "name")
    assert 'value="Mars/Olympus"' in page.text  # what was typed is kept
    assert world.places.facility(FACILITY).timezone == "Asia/Tokyo"


def test_staff_places_audited_with_the_staff_actor(site: Site) -> None:
    client, world, secrets = site
    csrf = sign_in(client, world, "op", secrets["op"])
    client.post(f"/facilities/{FACILITY}/rooms/new", data=room_form(csrf))
    form = {"csrf": csrf, "name": "Sports centre", "address": "", "timezone": "Asia/Tokyo",
            **HOURS}  # fmt: skip
    client.post(f"/facilities/{FACILITY}/settings", data=form)
    [room] = audit.entries(world.db, subject="room:studio")
    assert (room.actor, room.action, room.detail["door"]) == ("staff:op", "room.saved",
                                                              "studio-door")  # fmt: skip
    [facility] = audit.entries(world.db, subject=f"facility:{FACILITY}")[:1]
    assert (facility.actor, facility.action) == ("staff:op", "facility.saved")
    trail = client.get(f"/audit?facility={FACILITY}").text
    assert "room:studio" in trail


def test_staff_places_viewer_cannot_change_anything(site: Site) -> None:
    client, world, secrets = site

    def changes() -> int:  # the sign-in and the refusals are audited too (admins' log)
        return sum(e.action.startswith(audit.RESERVATION_ACTIONS)
                   for e in audit.entries(world.db, limit=1000))  # fmt: skip

    before = changes()
    csrf = sign_in(client, world, "view", secrets["view"])
    settings = client.get(f"/facilities/{FACILITY}/settings")
    assert settings.status_code == 200 and 'id="save"' not in settings.text
    assert 'id="save"' not in client.get(f"/facilities/{FACILITY}/rooms/{ROOM}").text
    assert 'id="new-room"' not in client.get(f"/facilities/{FACILITY}/rooms").text
    assert client.get(f"/facilities/{FACILITY}/rooms/new").status_code == 403
    attempts = [
        (f"/facilities/{FACILITY}/settings", {"name": "X", "timezone": "Asia/Tokyo", **HOURS}),
        (f"/facilities/{FACILITY}/rooms/new", room_form(csrf)),
        (f"/facilities/{FACILITY}/rooms/{ROOM}", room_form(csrf, door_id="other")),
    ]
    for path, form in attempts:
        assert client.post(path, data={**form, "csrf": csrf}).status_code == 403, path
    assert changes() == before
    assert world.places.room(ROOM).door_id == DOOR


def test_staff_places_pages_speak_japanese(site: Site) -> None:
    client, world, secrets = site
    sign_in(client, world, "view", secrets["view"])
    assert "施設の設定" in client.get(f"/facilities/{FACILITY}/settings?lang=ja").text
    assert "扉ID" in client.get(f"/facilities/{FACILITY}/rooms/{ROOM}?lang=ja").text
