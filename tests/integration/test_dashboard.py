"""The staff dashboard through FastAPI's test client on a real database:
sign-in with TOTP, CSRF, rate limiting, roles, fleet table, alerts, metrics."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import insert

from central.api.app import create_app
from central.db.engine import Database, utc
from central.db.tables import devices
from central.ops.alerts import Transition
from central.ops.service import AlertStore
from central.ops.staff import StaffStore
from tests.harness.keys import fixed_code_key
from tests.harness.web import METADATA_AUTH, WITH_METADATA

NOW = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[TestClient, Database, Clock, dict[str, str]]]:
    db = Database(f"sqlite:///{tmp_path / 'central.db'}")
    clock = Clock()
    app: FastAPI = create_app(db, now=clock, code_key=fixed_code_key, web=WITH_METADATA)
    staff = StaffStore(db)
    secrets = {
        "op": staff.create("op", PASSWORD, "operator"),
        "view": staff.create("view", PASSWORD, "viewer"),
    }
    with db.write() as conn:
        for i, (status, temp) in enumerate([("online", 48.0), ("offline", 71.5), ("online", 80.2)]):
            conn.execute(insert(devices).values(
                id=f"dev-{i}", facility="gym" if i < 2 else "pool", status=status, session=1,
                last_seen=utc(NOW - timedelta(minutes=i)), versions={"kiosk": "0.1.0"},
                health={"cpu_temp_c": temp, "outbox_depth": i * 10, "reservation_age_s": 120.0},
                health_at=utc(NOW),
            ))  # fmt: skip
    AlertStore(db).apply([Transition("dev-1", "offline", True, "device is offline", NOW)])
    with TestClient(app, base_url="http://testserver") as client:
        yield client, db, clock, secrets
    db.close()


def form_csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no csrf field"
    return match.group(1)


def sign_in(
    client: TestClient, user: str, secret: str, at: datetime, code: str | None = None
) -> int:
    page = client.get("/login")
    data = {"username": user, "password": PASSWORD, "csrf": form_csrf(page.text),
            "code": code or pyotp.TOTP(secret).at(at)}  # fmt: skip
    return int(client.post("/login", data=data, follow_redirects=False).status_code)


def test_dashboard_requires_sign_in(
    setup: tuple[TestClient, Database, Clock, dict[str, str]],
) -> None:
    client, *_ = setup
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"


def test_dashboard_sign_in_fleet_and_filters(
    setup: tuple[TestClient, Database, Clock, dict[str, str]],
) -> None:
    client, _, clock, secrets = setup
    assert sign_in(client, "view", secrets["view"], clock.now) == 303
    fleet = client.get("/?lang=en").text
    assert "dev-0" in fleet and "dev-2" in fleet and "Online: 2 · Offline: 1" in fleet
    hot_first = client.get("/?sort=temperature&desc=true").text
    assert (
        hot_first.index("device-dev-2")
        < hot_first.index("device-dev-1")
        < hot_first.index("device-dev-0")
    )
    offline_only = client.get("/?status=offline").text
    assert "device-dev-1" in offline_only and "device-dev-0" not in offline_only
    ja = client.get("/?lang=ja").text
    assert "端末一覧" in ja and "オフライン" in ja
    assert "dev-1" in client.get("/devices/dev-1").text
    assert client.get("/devices/nope").status_code == 404


def test_dashboard_wrong_code_and_csrf_and_rate_limit(
    setup: tuple[TestClient, Database, Clock, dict[str, str]],
) -> None:
    client, _, clock, secrets = setup
    assert sign_in(client, "op", secrets["op"], clock.now, code="000000") == 401
    forged = client.post(
        "/login", data={"username": "op", "password": PASSWORD, "code": "1", "csrf": "x"}
    )
    assert forged.status_code == 403
    statuses = [
        sign_in(client, f"ghost{i}", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", clock.now)
        for i in range(25)
    ]
    assert 429 in statuses


def test_dashboard_acknowledge_needs_operator_and_csrf(
    setup: tuple[TestClient, Database, Clock, dict[str, str]],
) -> None:
    client, db, clock, secrets = setup
    assert sign_in(client, "view", secrets["view"], clock.now) == 303
    page = client.get("/alerts").text
    assert "ack-" not in page  # viewers see no acknowledge button
    [alert] = AlertStore(db).listing()
    denied = client.post(
        f"/alerts/{alert['pk']}/ack", data={"csrf": form_csrf(page)}, follow_redirects=False
    )
    assert denied.status_code == 403
    client.cookies.clear()
    clock.now += timedelta(seconds=31)  # a new TOTP step
    assert sign_in(client, "op", secrets["op"], clock.now) == 303
    page = client.get("/alerts").text
    assert f"ack-{alert['pk']}" in page
    bad = client.post(f"/alerts/{alert['pk']}/ack", data={"csrf": "forged"}, follow_redirects=False)
    assert bad.status_code == 403
    ok = client.post(
        f"/alerts/{alert['pk']}/ack", data={"csrf": form_csrf(page)}, follow_redirects=False
    )
    assert ok.status_code == 303
    assert AlertStore(db).listing()[0]["acknowledged_by"] == "op"


def test_dashboard_session_expires(
    setup: tuple[TestClient, Database, Clock, dict[str, str]],
) -> None:
    client, _, clock, secrets = setup
    assert sign_in(client, "view", secrets["view"], clock.now) == 303
    assert client.get("/", follow_redirects=False).status_code == 200
    clock.now += timedelta(hours=9)
    assert client.get("/", follow_redirects=False).status_code == 303


def test_metrics_expose_fleet(setup: tuple[TestClient, Database, Clock, dict[str, str]]) -> None:
    client, *_ = setup
    text = client.get("/metrics", headers=METADATA_AUTH).text
    assert 'kiosk_devices{status="online"} 2.0' in text
    assert 'kiosk_device_cpu_temperature_celsius{device="dev-2",facility="pool"} 80.2' in text
    assert 'kiosk_alerts_open{rule="offline"} 1.0' in text


def test_ops_api_alerts_and_health(
    setup: tuple[TestClient, Database, Clock, dict[str, str]],
) -> None:
    from central.api.tokens import TokenStore
    from central.ops.service import HealthHistory

    client, db, _, _ = setup
    _, reader = TokenStore(db).create("reader", "test")
    _, operator = TokenStore(db).create("operator", "test")
    as_reader = {"Authorization": f"Bearer {reader}"}
    as_operator = {"Authorization": f"Bearer {operator}"}
    assert client.get("/api/alerts").status_code == 401
    page = client.get("/api/alerts?state=open", headers=as_reader).json()
    assert [(a["device"], a["rule"]) for a in page["items"]] == [("dev-1", "offline")]
    alert_id = page["items"][0]["id"]
    assert (
        client.post(
            f"/api/alerts/{alert_id}/acknowledge", json={"by": "bot"}, headers=as_reader
        ).status_code
        == 403
    )
    acked = client.post(
        f"/api/alerts/{alert_id}/acknowledge", json={"by": "bot"}, headers=as_operator
    )
    assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "bot"
    assert (
        client.post(f"/api/alerts/{alert_id}/acknowledge", json={}, headers=as_operator).status_code
        == 409
    )
    assert (
        client.post("/api/alerts/999/acknowledge", json={}, headers=as_operator).status_code == 404
    )
    HealthHistory(db).record("dev-0", datetime.now(UTC), {"cpu_temp_c": 51.5})
    points = client.get("/api/devices/dev-0/health?hours=1", headers=as_reader).json()
    assert points[0]["figures"] == {"cpu_temp_c": 51.5}
    spec = client.get("/openapi.json", headers=METADATA_AUTH).json()
    assert "/api/alerts" in spec["paths"] and "/api/devices/{device}/health" in spec["paths"]
