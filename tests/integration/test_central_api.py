"""The HTTP API in-process (FastAPI TestClient) on a SQLite file: bearer
tokens and roles, reservation CRUD with version bumps, events paging and
filters, devices, OpenAPI."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from central.api.app import create_app
from central.api.tokens import TokenStore
from central.db.engine import Database
from central.ingest.store import IngestStore
from contracts.mqtt import EventBatch
from tests.harness.keys import fixed_code_key
from tests.harness.web import METADATA_AUTH, WITH_METADATA

SLOT = {"facility": "fac-1", "door": "room-a", "starts_at": "2026-04-01T10:00:00+09:00",
        "ends_at": "2026-04-01T11:00:00+09:00"}  # fmt: skip


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'central.db'}")
    yield database
    database.close()


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    app = create_app(db, page_size_max=50, code_key=fixed_code_key, web=WITH_METADATA)
    with TestClient(app) as test_client:
        yield test_client


def auth(db: Database, role: str = "operator") -> dict[str, str]:
    _, token = TokenStore(db).create(role)  # type: ignore[arg-type]
    return {"Authorization": f"Bearer {token}"}


def test_api_needs_a_valid_token_with_the_right_role(client: TestClient, db: Database) -> None:
    assert client.get("/api/reservations").status_code == 401
    bad = {"Authorization": "Bearer ck_nope"}
    assert client.get("/api/reservations", headers=bad).status_code == 401
    reader = auth(db, "reader")
    assert client.get("/api/reservations", headers=reader).status_code == 200
    refused = client.post("/api/reservations", json=SLOT, headers=reader)
    assert refused.status_code == 403 and "operator" in refused.json()["detail"]


def test_api_reservation_crud_bumps_versions_and_hides_the_code(
    client: TestClient, db: Database
) -> None:
    h = auth(db)
    created = client.post(
        "/api/reservations", json={**SLOT, "code": "482913", "credential_refs": ["ref1"]}, headers=h
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["facility_version"] == 1 and body["has_code"] is True
    assert "482913" not in created.text and "code_hash" not in body
    rid = body["id"]
    moved = client.patch(f"/api/reservations/{rid}", json={"door": "room-b"}, headers=h)
    assert moved.json()["door"] == "room-b" and moved.json()["facility_version"] == 2
    cancelled = client.delete(f"/api/reservations/{rid}", headers=h)
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["facility_version"] == 3
    again = client.patch(f"/api/reservations/{rid}", json={"door": "room-c"}, headers=h)
    assert again.status_code == 409
    facility = client.get("/api/facilities/fac-1", headers=h).json()
    assert facility["version"] == 3 and facility["active_hash"].startswith("v1:")
    assert client.get("/api/reservations/nope", headers=h).status_code == 404


def test_api_refuses_bad_reservations_with_reasons(client: TestClient, db: Database) -> None:
    h = auth(db)
    backwards = {**SLOT, "ends_at": "2026-04-01T09:00:00+09:00"}
    r = client.post("/api/reservations", json=backwards, headers=h)
    assert r.status_code == 422 and "ends_at must be after starts_at" in r.text
    naive = {**SLOT, "starts_at": "2026-04-01T10:00:00"}
    assert client.post("/api/reservations", json=naive, headers=h).status_code == 422
    extra = {**SLOT, "name": "山田"}
    assert client.post("/api/reservations", json=extra, headers=h).status_code == 422


def test_api_lists_reservations_in_pages(client: TestClient, db: Database) -> None:
    h = auth(db)
    for i in range(5):
        client.post("/api/reservations", json={**SLOT, "id": f"r{i}"}, headers=h)
    first = client.get("/api/reservations?facility=fac-1&limit=3", headers=h).json()
    assert [r["id"] for r in first["items"]] == ["r0", "r1", "r2"] and first["next"] == "r2"
    rest = client.get(f"/api/reservations?limit=3&after={first['next']}", headers=h).json()
    assert [r["id"] for r in rest["items"]] == ["r3", "r4"] and rest["next"] is None


def test_api_events_filters_and_paging(client: TestClient, db: Database) -> None:
    rows = [
        (1, "door.opened", "2026-04-01T10:00:00+09:00"),
        (2, "checkin.granted", "2026-04-01T10:05:00+09:00"),
        (3, "door.opened", "2026-04-01T10:10:00+09:00"),
    ]
    events = [
        {"id": str(uuid.uuid4()), "seq": s, "type": t, "at": at, "clock_trusted": True, "data": {}}
        for s, t, at in rows
    ]
    store = IngestStore(db, "w")
    store.store_batches([EventBatch.model_validate({"device": "dev-a", "events": events})])
    h = auth(db, "reader")
    page = client.get("/api/events?device=dev-a&type=door.opened&limit=1", headers=h).json()
    assert [e["seq"] for e in page["items"]] == [1] and page["next"]
    rest = client.get(f"/api/events?type=door.opened&after={page['next']}", headers=h).json()
    assert [e["seq"] for e in rest["items"]] == [3] and rest["next"] is None
    window = client.get(
        "/api/events", params={"since": "2026-04-01T01:04:00Z", "until": "2026-04-01T01:06:00Z"},
        headers=h,
    ).json()  # fmt: skip
    assert [e["type"] for e in window["items"]] == ["checkin.granted"]
    devices = client.get("/api/devices", headers=h).json()
    assert devices[0]["id"] == "dev-a" and devices[0]["contiguous_seq"] == 3
    assert client.get("/api/devices/dev-a", headers=h).json()["max_seq"] == 3
    assert client.get("/api/devices/dev-z", headers=h).status_code == 404


def test_api_publishes_openapi(client: TestClient) -> None:
    spec = client.get("/openapi.json", headers=METADATA_AUTH).json()
    for path in ("/api/reservations", "/api/reservations/{reservation_id}", "/api/events",
                 "/api/devices", "/api/facilities/{facility}"):  # fmt: skip
        assert path in spec["paths"]
