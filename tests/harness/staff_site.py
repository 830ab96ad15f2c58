"""Central's staff pages through the test client on a real SQLite database:
a booking world with an operator and a viewer, and signing in as either."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyotp
from fastapi.testclient import TestClient

from central.api.app import create_app
from central.db.engine import Database
from central.ops.staff import StaffStore
from tests.harness.booking import BookingWorld, booking_world
from tests.harness.keys import fixed_code_key

PASSWORD = "correct horse battery"
StaffSite = tuple[TestClient, BookingWorld, dict[str, str]]


@contextmanager
def staff_site(folder: Path) -> Iterator[StaffSite]:
    """The API app with the dashboard, and the TOTP secrets of ``op``
    (operator) and ``view`` (viewer)."""
    db = Database(f"sqlite:///{folder / 'central.db'}")
    world = booking_world(db)
    staff = StaffStore(db)
    secrets = {"op": staff.create("op", PASSWORD, "operator"),
               "view": staff.create("view", PASSWORD, "viewer")}  # fmt: skip
    app = create_app(db, now=world.clock, code_key=fixed_code_key)
    try:
        with TestClient(app, base_url="http://testserver") as client:
            yield client, world, secrets
    finally:
        db.close()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no csrf field"
    return match.group(1)


def sign_in(client: TestClient, world: BookingWorld, user: str, secret: str) -> str:
    """Password + TOTP at the world's clock; returns the session's CSRF token."""
    page = client.get("/login")
    code = pyotp.TOTP(secret).at(world.clock())
    form = {"username": user, "password": PASSWORD, "code": code, "csrf": csrf_of(page.text)}
    answer = client.post("/login", follow_redirects=False, data=form)
    assert answer.status_code == 303
    return csrf_of(client.get("/?lang=en").text)
