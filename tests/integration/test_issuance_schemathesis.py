"""Property-based testing of the issuance HTTP API (the device listener's
``/api/issuance``) with schemathesis against its own ``/openapi.json``,
in-process over ASGI: every operation, generated inputs (valid and not), as
a counter-role device: no server error, every answer as the schema says
(refusals are ``IssuanceErrorOut`` with a documented status)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from central.db.engine import Database
from central.issuance.api import create_issuance_app
from central.mtls import TLS_EXTENSION
from tests.harness.issuance import ALWAYS_OPEN, MovableClock, build, seeded_registry, weekday_at
from tests.harness.issuance import settings_for as issuance_settings

Asgi = Any


def as_counter(app: Asgi, device: str = "kiosk-1") -> Asgi:
    """What the mutual-TLS listener adds to each request of a counter's connection."""

    async def with_client(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            client = {"client_cn": device, "client_roles": ["counter"]}
            scope = {**scope, "extensions": {**scope.get("extensions", {}), TLS_EXTENSION: client}}
        await app(scope, receive, send)

    return with_client


@pytest.fixture
def issuance_schema(tmp_path: Path) -> Iterator[schemathesis.BaseSchema]:
    db = Database(f"sqlite:///{tmp_path / 'central.db'}")
    settings = issuance_settings(tmp_path / "trust", hours=ALWAYS_OPEN)
    registry = seeded_registry(settings)
    service, orders = build(db, settings, registry, MovableClock(weekday_at(10)))
    app = as_counter(create_issuance_app(service, orders))
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    registry.close()
    db.close()


def test_issuance_api_schema_conformance(issuance_schema: schemathesis.BaseSchema) -> None:
    checked = []
    for result in issuance_schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an Err raises here

        @given(case=operation.as_strategy())
        # Derandomised (the same examples every run: CI never fails by luck).
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck),
                  derandomize=True, database=None)  # fmt: skip
        def check(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
            # Schema-valid bodies name challenges, sessions and orders that do
            # not exist, so a refusal of valid data is not a failure here.
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        check()
        checked.append(operation.label)
    assert "POST /api/issuance/sessions" in checked
    assert "POST /api/issuance/orders/{order_id}/confirm" in checked
