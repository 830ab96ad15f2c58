"""``GET /api/quarantine`` in-process on a SQLite file: the reader token of
``GET /api/events``, pages, the reason, and never the refused data."""

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


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'central.db'}")
    yield database
    database.close()


def test_quarantine_api_lists_refused_events_without_their_data(db: Database) -> None:
    data = [{"door": "a"}, {"name": "Yamada Taro"}, {"note": "card 123456789012"}]
    events = [{"id": str(uuid.uuid4()), "seq": s, "type": "door.opened",
               "at": "2026-04-01T10:00:00+09:00", "clock_trusted": True, "data": d}
              for s, d in enumerate(data, start=1)]  # fmt: skip
    outcome = IngestStore(db, "w").store_batches(
        [EventBatch.model_validate({"device": "dev-a", "events": events})]
    )
    assert (outcome.stored, outcome.quarantined) == (1, 2)
    _, reader = TokenStore(db).create("reader")
    h = {"Authorization": f"Bearer {reader}"}
    with TestClient(create_app(db, page_size_max=50, code_key=fixed_code_key)) as client:
        assert client.get("/api/quarantine").status_code == 401
        bad = {"Authorization": "Bearer ck_nope"}
        assert client.get("/api/quarantine", headers=bad).status_code == 401
        first = client.get("/api/quarantine?device=dev-a&limit=1", headers=h)
        assert first.status_code == 200, first.text
        page = first.json()
        (item,) = page["items"]
        assert (item["seq"], item["event_id"], item["type"]) == (2, events[1]["id"], "door.opened")
        assert "personal data" in item["reason"]
        assert item["envelope"]["data_withheld"] is True and "data" not in item["envelope"]
        rest = client.get(f"/api/quarantine?after={page['next']}", headers=h).json()
        assert [i["seq"] for i in rest["items"]] == [3] and rest["next"] is None
        assert client.get("/api/quarantine?device=dev-b", headers=h).json()["items"] == []
        assert "Yamada" not in first.text + str(rest) and "123456789012" not in str(rest)
        assert "/api/quarantine" in client.app.openapi()["paths"]  # type: ignore[attr-defined]
