"""``python -m central registry|issuance`` and the staff statistics route."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient

from central.api.app import create_app
from central.api.tokens import TokenStore
from central.db.engine import Database
from central.issuance.config import IssuanceSection
from central.issuance.orders import OrderDesk
from central.issuance.registry.adapter import NOT_RECORDED
from central.issuance.registry.sqlite import SqliteRegistry, certificate_key
from contracts.issuance import ConfirmIn, OrderIn, OrderItemIn, OutcomeIn
from tests.harness.issuance import (
    JST,
    MovableClock,
    build,
    issuance_pki,
    seeded_registry,
    session_in,
    settings_for,
    weekday_at,
)
from tests.harness.keys import fixed_code_key

ROOT = Path(__file__).resolve().parents[2]


def central(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "central", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "central.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "c.db"}"\n'
        f'[issuance]\nregistry_file = "{tmp_path / "registry.db"}"\n'
    )
    return path


def test_cli_registry_add_list_and_link(config: Path, tmp_path: Path) -> None:
    added = central(
        config,
        "registry",
        "add",
        "--name",
        "試験　次郎",
        "--birth-date",
        "1990-01-02",
        "--address",
        "みどり市北町1番",
        "--household",
        "H9",
        "--moved-in",
        "2020-04-01",
    )
    assert added.returncode == 0, added.stderr
    ref = added.stdout.strip()
    listed = central(config, "registry", "list")
    assert json.loads(listed.stdout) == [
        {
            "ref": ref,
            "household": "H9",
            "status": "resident",
            "support_measures": False,
            "honseki_here": False,
        }
    ]
    assert "試験" not in listed.stdout
    user = issuance_pki().user("valid").cert
    pem = tmp_path / "user.pem"
    pem.write_bytes(user.public_bytes(serialization.Encoding.PEM))
    linked = central(config, "registry", "link-cert", ref, str(pem))
    assert linked.returncode == 0, linked.stderr
    registry = SqliteRegistry(tmp_path / "registry.db")
    assert registry.resident_for(certificate_key(user)) == ref
    # Added without --sex or --relationship: nothing invented on a certificate.
    juminhyo = IssuanceSection().kind("juminhyo")
    assert juminhyo is not None
    lines = "\n".join(registry.certificate_lines(ref, juminhyo, {"relationship": "true"},
                                                 weekday_at(10).date()))  # fmt: skip
    assert f"性別　{NOT_RECORDED}" in lines and f"続柄　{NOT_RECORDED}" in lines
    assert f"世帯主　{NOT_RECORDED}" in lines and "男" not in lines
    registry.close()
    unknown = central(config, "registry", "link-cert", "R-NOBODY", str(pem))
    assert unknown.returncode == 1 and "no resident" in unknown.stderr
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello")
    assert central(config, "registry", "link-cert", ref, str(garbage)).returncode == 2


def _issue_two(db: Database, tmp_path: Path) -> str:
    settings = settings_for(tmp_path / "trust")
    registry = seeded_registry(settings)
    clock = MovableClock(weekday_at(10))
    service, orders = build(db, settings, registry, clock)
    challenge = service.new_challenge("kiosk-1")
    session = service.open_session(
        "kiosk-1", session_in(issuance_pki().user("valid"), challenge, "kiosk-1")
    )
    _order(orders, session.session_id, "inkan", 2, "1" * 32)
    registry.close()
    return clock().astimezone(JST).strftime("%Y-%m")


def _order(orders: OrderDesk, session_id: str, kind: str, copies: int, key: str) -> None:
    order = orders.create(
        "kiosk-1",
        OrderIn(
            session_id=session_id,
            idempotency_key=key,
            items=[OrderItemIn(kind=kind, copies=copies)],
        ),
    )
    orders.confirm("kiosk-1", order.order_id, ConfirmIn(payment_ref="p"))
    orders.outcome("kiosk-1", order.order_id, OutcomeIn(status="printed"))


def test_cli_and_staff_api_issuance_stats(config: Path, tmp_path: Path) -> None:
    with Database(f"sqlite:///{tmp_path / 'c.db'}") as db:
        month = _issue_two(db, tmp_path)
        _, token = TokenStore(db).create("reader")
        with TestClient(create_app(db, code_key=fixed_code_key)) as client:
            answer = client.get(
                f"/api/issuance/stats?month={month}", headers={"Authorization": f"Bearer {token}"}
            )
            assert client.get(f"/api/issuance/stats?month={month}").status_code == 401
            bad = client.get(
                "/api/issuance/stats?month=2025-13", headers={"Authorization": f"Bearer {token}"}
            )
    expected = {"kind": "inkan", "issued": 2, "printed": 2, "not_handed_out": 0, "fees_yen": 400}
    assert answer.json() == {"month": month, "kinds": [expected]}
    assert bad.status_code == 422
    printed = central(config, "issuance", "stats", "--month", month)
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout)["kinds"] == [expected]
    assert central(config, "issuance", "stats", "--month", "May").returncode == 2
