"""The dashboard's configuration pages (/config) through the test client on
a real database: desired vs applied per device, editing as TOML with the
allowlist checked at central, history, push now, roles and audit."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyotp
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import insert, update

from central.audit import AuditFilter, query
from central.configpush import ConfigPushService
from central.db.engine import Database
from central.db.tables import devices
from central.ops.dashboard.config_page import add_config_pages
from central.ops.dashboard.views import add_dashboard
from central.ops.staff import StaffStore

NOW = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


@dataclass
class Site:
    client: TestClient
    db: Database
    secrets: dict[str, str]
    issued: list[tuple[str, str, dict[str, Any], str]] = field(default_factory=list)

    def issue(self, device: str, name: str, args: dict[str, Any], issuer: str,
              source: str) -> str:  # fmt: skip
        self.issued.append((device, name, args, issuer))
        return f"00000000-0000-4000-8000-{len(self.issued):012d}"

    def sign_in(self, user: str) -> str:
        page = self.client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token
        code = pyotp.TOTP(self.secrets[user]).at(NOW)
        form = {"username": user, "password": PASSWORD, "code": code, "csrf": token.group(1)}
        assert self.client.post("/login", data=form, follow_redirects=False).status_code == 303
        return csrf_of(self.client.get("/config?lang=en").text)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    db = Database(f"sqlite:///{tmp_path / 'central.db'}")
    staff = StaffStore(db)
    secrets = {"admin1": staff.create("admin1", PASSWORD, "admin"),
               "op": staff.create("op", PASSWORD, "operator")}  # fmt: skip
    with db.write() as conn:
        for device in ("gym-door-01", "gym-door-02"):
            conn.execute(insert(devices).values(id=device, facility="gym", status="online",
                                                session=1, versions={}))  # fmt: skip
    app = FastAPI()
    dash = add_dashboard(app, db, lambda: NOW)
    holder = Site(TestClient(app, base_url="http://testserver"), db, secrets)
    add_config_pages(app, dash, ConfigPushService(db, holder.issue))
    with holder.client:
        yield holder
    db.close()


def cell(html: str, device: str, name: str) -> str:
    row = re.search(rf'<tr id="config-{device}">(.*?)</tr>', html, re.S)
    assert row, f"no row for {device}"
    found = re.search(rf'<td class="{name}">(.*?)</td>', row.group(1), re.S)
    assert found
    return found.group(1).strip()


def test_configpush_dashboard_edit_push_and_desired_vs_applied(site: Site) -> None:
    csrf = site.sign_in("admin1")
    refused = site.client.post("/config/facility/gym?lang=en", data={
        "csrf": csrf, "settings": '[broker]\nhost = "evil.example"\n'})  # fmt: skip
    assert refused.status_code == 422
    assert "[broker] is not pushable" in refused.text
    assert "evil.example" in refused.text  # what was typed is kept for correcting
    form = {"csrf": csrf, "settings": "[lock]\ndefault_unlock_seconds = 8\n", "note": "winter"}
    saved = site.client.post("/config/facility/gym", follow_redirects=False, data=form)
    assert saved.status_code == 303
    page = site.client.get(saved.headers["location"] + "&lang=en").text
    assert "Saved as version 1." in page
    assert 'id="config-version-1"' in page and "winter" in page
    assert cell(page, "gym-door-01", "desired") == "1"
    assert cell(page, "gym-door-01", "applied") == "—"
    assert cell(page, "gym-door-01", "state") == "Not pushed"
    pushed = site.client.post("/config/facility/gym/push", data={"csrf": csrf},
                              follow_redirects=False)  # fmt: skip
    assert pushed.status_code == 303
    assert [(d, n, a["version"]) for d, n, a, _ in site.issued] == [
        ("gym-door-01", "config.apply", 1),
        ("gym-door-02", "config.apply", 1),
    ]
    assert site.issued[0][3] == "staff:admin1"
    with site.db.write() as conn:  # what the ingest stores from the device's health
        conn.execute(update(devices).where(devices.c.id == "gym-door-01")
                     .values(health={"config_version": 1}))  # fmt: skip
    page = site.client.get("/config/device/gym-door-01?lang=en").text
    assert cell(page, "gym-door-01", "applied") == "1"
    assert cell(page, "gym-door-01", "state") == "Applied"
    assert "default_unlock_seconds = 8" in page.split('id="config-desired"')[1]
    overview = site.client.get("/config?lang=en").text
    assert cell(overview, "gym-door-02", "state") == "Pending"
    actions = [
        (e.action, e.subject, e.outcome)
        for e in query.page(site.db, AuditFilter(None, None, "staff:admin1", "config", "", ""))
    ]
    assert ("config.save", "config:facility:gym", "refused") in actions
    assert ("config.save", "config:facility:gym", "ok") in actions
    assert ("config.push", "device:gym-door-02", "ok") in actions


def test_configpush_dashboard_operator_sees_but_may_not_change(site: Site) -> None:
    csrf = site.sign_in("op")
    page = site.client.get("/config/device/gym-door-01?lang=en")
    assert page.status_code == 200
    assert 'id="config-save"' not in page.text and 'id="config-push"' not in page.text
    for path in ("/config/device/gym-door-01", "/config/device/gym-door-01/push"):
        answer = site.client.post(path, data={"csrf": csrf, "settings": "[voice]\nvolume = 1\n"})
        assert answer.status_code == 403
    assert site.issued == []
    assert "設定配信" in site.client.get("/config?lang=ja").text
    assert site.client.get("/config/device/nowhere").status_code == 404
    assert site.client.get("/config/shelf/gym").status_code == 404
