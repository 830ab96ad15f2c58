"""The operator API for members, rooms and bookings (FastAPI TestClient on an
SQLite file), the CSV import through the API and ``python -m central import``,
and revision 0002 upgrading a database at 0001 that holds data."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from central.api.app import create_app
from central.api.tokens import TokenStore
from central.db.engine import Database
from central.db.migrate import Status, head
from central.reservations import audit
from tests.harness.booking import FACILITY, ROOM, booking_world, today_plus
from tests.harness.central import ROOT
from tests.harness.keys import fixed_code_key

pytestmark = pytest.mark.integration

MEMBERS_CSV = """external_number,display_name,email,status,language
A-1,Sato Hanako,hanako@example.jp,active,ja
A-2,Bad Mail,not-an-address,active,en
A-3,Tanaka Ken,ken@example.jp,suspended,
"""


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with Database(f"sqlite:///{tmp_path / 'central.db'}") as database:
        booking_world(database)
        yield database


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(db, code_key=fixed_code_key)) as test_client:
        yield test_client


def auth(db: Database, role: str = "operator") -> dict[str, str]:
    _, token = TokenStore(db).create(role)  # type: ignore[arg-type]
    return {"Authorization": f"Bearer {token}"}


def test_api_members_crud_and_lookup(client: TestClient, db: Database) -> None:
    h = auth(db)
    made = client.post("/api/members", headers=h, json={"display_name": "Sato",
                                                         "email": "Sato@Example.jp"})  # fmt: skip
    assert made.status_code == 201, made.text
    member = made.json()
    assert member["email"] == "sato@example.jp"
    dup = client.post("/api/members", headers=h, json={"display_name": "X",
                                                        "email": "sato@example.jp"})  # fmt: skip
    assert dup.status_code == 409
    found = client.get("/api/members", headers=h, params={"email": "SATO@example.jp"}).json()
    assert [m["id"] for m in found["items"]] == [member["id"]]
    suspended = client.patch(f"/api/members/{member['id']}", headers=h,
                             json={"status": "suspended"})  # fmt: skip
    assert suspended.json()["status"] == "suspended"
    refused = client.post("/api/bookings", headers=h, json={
        "room_id": ROOM, "member_id": member["id"], "starts_at": today_plus(3, 10).isoformat(),
        "ends_at": today_plus(3, 11).isoformat()})  # fmt: skip
    assert refused.status_code == 409
    assert refused.json()["detail"]["code"] == "member_suspended"
    reader = auth(db, "reader")
    body = {"display_name": "R", "email": "r@example.jp"}
    assert client.post("/api/members", headers=reader, json=body).status_code == 403


def test_api_bookings_create_list_move_cancel_and_audit(client: TestClient, db: Database) -> None:
    h = auth(db)
    slot = {"room_id": ROOM, "starts_at": today_plus(3, 10).isoformat(),
            "ends_at": today_plus(3, 11).isoformat()}  # fmt: skip
    made = client.post("/api/bookings", headers=h, json=slot)
    assert made.status_code == 201, made.text
    booking = made.json()
    assert booking["member_id"] is None and len(booking["reservation_code"]) == 6
    taken = client.post("/api/bookings", headers=h, json=slot)
    assert taken.status_code == 409 and taken.json()["detail"]["code"] == "slot_taken"
    outside = client.post("/api/bookings", headers=h, json={
        **slot, "starts_at": today_plus(3, 7).isoformat(),
        "ends_at": today_plus(3, 8).isoformat()})  # fmt: skip
    assert outside.json()["detail"]["code"] == "outside_opening_hours"
    day = today_plus(3, 0).date().isoformat()
    listed = client.get("/api/bookings", headers=h, params={"facility": FACILITY, "day": day})
    assert [b["id"] for b in listed.json()] == [booking["id"]]
    assert "reservation_code" not in listed.json()[0]
    moved = client.post(
        f"/api/bookings/{booking['id']}/move",
        headers=h,
        json={"starts_at": today_plus(3, 12).isoformat(), "ends_at": today_plus(3, 13).isoformat()},
    )
    assert moved.status_code == 200, moved.text
    assert datetime.fromisoformat(moved.json()["starts_at"]) == today_plus(3, 12)
    cancelled = client.post(f"/api/bookings/{booking['id']}/cancel", headers=h)
    assert cancelled.json()["status"] == "cancelled"
    actions = [e.action for e in audit.entries(db, subject=f"booking:{booking['id']}")]
    assert actions == ["booking.cancelled", "booking.moved", "booking.created"]
    assert audit.entries(db, subject=f"booking:{booking['id']}")[0].actor.startswith("token:")
    free = client.get(f"/api/rooms/{ROOM}/availability", headers=h, params={"day": day})
    assert len(free.json()) == 12


def test_api_rooms_closures_and_enrolment_codes(client: TestClient, db: Database) -> None:
    h = auth(db)
    rooms = client.get(f"/api/facilities/{FACILITY}/rooms", headers=h).json()
    assert [r["id"] for r in rooms] == [ROOM]
    bad = {**rooms[0], "rules": {"slot_minutes": 60, "min_duration_minutes": 90}}
    assert client.put(f"/api/rooms/{ROOM}", headers=h, json=bad).status_code == 422
    closure = client.post("/api/closures", headers=h, json={
        "facility": FACILITY, "starts_at": today_plus(5, 0).isoformat(),
        "ends_at": today_plus(6, 0).isoformat(), "kind": "holiday"})  # fmt: skip
    assert closure.status_code == 201, closure.text
    free = client.get(f"/api/rooms/{ROOM}/availability", headers=h,
                      params={"day": today_plus(5, 0).date().isoformat()})  # fmt: skip
    assert free.json() == []
    # The calendar's first day leaves it in UTC: a clear refusal, not a 500.
    ancient = client.get(f"/api/rooms/{ROOM}/availability", headers=h, params={"day": "0001-01-01"})
    assert ancient.status_code == 409 and "out of range" in ancient.json()["detail"]
    member = client.post("/api/members", headers=h,
                         json={"display_name": "C", "email": "c@example.jp"}).json()  # fmt: skip
    code = client.post(f"/api/members/{member['id']}/enrolment-codes", headers=h)
    assert code.status_code == 201 and len(code.json()["code"]) == 8
    assert client.get(f"/api/members/{member['id']}/cards", headers=h).json() == []


def test_import_members_csv_reports_bad_rows_and_is_idempotent(
    client: TestClient, db: Database
) -> None:
    h = {**auth(db), "Content-Type": "text/csv"}
    first = client.post("/api/import/members", headers=h, content=MEMBERS_CSV.encode("utf-8"))
    report = first.json()
    assert (report["created"], report["updated"]) == (2, 0)
    assert [(e["line"], e["code"]) for e in report["errors"]] == [(3, "bad_value")]
    again = client.post("/api/import/members", headers=auth(db),
                        json={"csv": MEMBERS_CSV})  # fmt: skip
    assert (again.json()["created"], again.json()["unchanged"]) == (0, 2)


def test_import_reservations_csv_applies_good_rows(client: TestClient, db: Database) -> None:
    client.post("/api/import/members", headers=auth(db), json={"csv": MEMBERS_CSV})
    day = today_plus(4, 0).date().isoformat()
    csv = (
        "external_id,room_id,starts_at,ends_at,member_number,status\n"
        f"R-1,{ROOM},{day} 10:00,{day} 12:00,A-1,booked\n"
        f"R-2,{ROOM},{day} 11:00,{day} 13:00,A-3,booked\n"
        f"R-3,no-room,{day} 14:00,{day} 15:00,A-1,booked\n"
        f"R-4,{ROOM},{day} 14:00,{day} 15:00,A-9,booked\n"
        f"R-5,{ROOM},{day} 25:00,{day} 15:00,A-1,booked\n"
    )
    report = client.post("/api/import/reservations", headers=auth(db), json={"csv": csv}).json()
    assert report["created"] == 1
    assert [(e["line"], e["code"]) for e in report["errors"]] == [
        (3, "slot_taken"),
        (4, "unknown_room"),
        (5, "unknown_member"),
        (6, "bad_time"),
    ]
    moved = csv.splitlines()[0] + f"\nR-1,{ROOM},{day} 15:00,{day} 16:00,A-1,cancelled\n"
    again = client.post("/api/import/reservations", headers=auth(db), json={"csv": moved})
    assert again.json()["updated"] == 1
    listed = client.get("/api/bookings", headers=auth(db), params={"room": ROOM}).json()
    assert [(b["external_id"], b["status"]) for b in listed] == [("R-1", "cancelled")]


def test_cli_import_members_file(db: Database, tmp_path: Path) -> None:
    csv = tmp_path / "members.csv"
    csv.write_bytes(MEMBERS_CSV.encode("cp932"))
    config = tmp_path / "central.toml"
    config.write_text(f'[database]\nurl = "{db.url}"\n')
    done = subprocess.run([sys.executable, "-m", "central", "import", "members", str(csv),
                           "--config", str(config)], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert f"{csv}:3: bad_value:" in done.stderr
    assert '"created": 2' in done.stdout


def test_migration_0002_upgrades_a_0001_database_with_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    with Database(url, check_schema=False) as db, db.engine.begin() as conn:
        from alembic.migration import MigrationContext
        from alembic.operations import Operations

        from central.db.migrate import scripts

        context = MigrationContext.configure(conn)
        with Operations.context(context):
            scripts().get_revision("0001").module.upgrade()
        context.stamp(scripts(), "0001")
        conn.execute(text("INSERT INTO facilities VALUES ('fac-1', 3, '2026-04-01 09:00:00')"))
    with Database(url, check_schema=False) as db:
        assert db.schema_state().status is Status.BEHIND
        db.upgrade_schema()
        assert db.schema_state().revision == head()  # 0002 and any later revision
    with Database(url) as db:
        world = booking_world(db)
        made = world.bookings.create(ROOM, today_plus(3, 10), today_plus(3, 11), member_id=None,
                                     actor="t")  # fmt: skip
        assert world.store.version(FACILITY) == 4  # the old version row carried on
        assert made.booking.status == "booked"
