"""The issuance HTTP API (the contract in :mod:`contracts.issuance`).

Served on the mutual-TLS device listener (:mod:`central.devices.listener`):
the device id is the verified client certificate's CN and its roles the
subject's ``role:`` OUs, which the listener puts into
``scope["extensions"]["tls"]``; a body never names the device, and only a
certificate provisioned for the counter role may issue. Every refusal is an
:class:`IssuanceErrorOut` with its contract code.

:func:`add_issuance_stats` adds the monthly statistics to the staff API
(bearer tokens, reader role).
"""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import SQLAlchemyError

from central.db.engine import Database
from central.errors import IssuanceRefused, RegistryError
from central.issuance.orders import OrderDesk, issuance_stats
from central.issuance.service import IssuanceService
from central.mtls import client_cn, client_roles
from contracts.issuance import (
    BASE_PATH,
    ERROR_CODES,
    CatalogueOut,
    ChallengeOut,
    ConfirmIn,
    ConfirmOut,
    IssuanceErrorOut,
    OrderIn,
    OrderOut,
    OutcomeIn,
    SessionIn,
    SessionOut,
)

log = logging.getLogger(__name__)
MONTH = re.compile(r"^(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])$")  # 1900-2999


def _device(request: Request) -> str:
    """The requesting device: the client certificate's CN, if its
    certificate carries the counter role (and it is allowed)."""
    service: IssuanceService = request.app.state.issuance_service
    return service.check_device(client_cn(request), client_roles(request))


Device = Annotated[str, Depends(_device)]


def _error(code: str, message: str, opens_at: Any = None) -> JSONResponse:
    body = IssuanceErrorOut(error=code, message=message, opens_at=opens_at)
    return JSONResponse(body.model_dump(mode="json", exclude_none=True), ERROR_CODES[code])


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(IssuanceRefused)
    async def _refused(_r: Request, exc: IssuanceRefused) -> JSONResponse:
        return _error(exc.code, exc.message, exc.opens_at)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_r: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error("request_invalid", f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(SQLAlchemyError)
    async def _database(_r: Request, exc: SQLAlchemyError) -> JSONResponse:
        log.error("issuance database error", extra={"error": type(exc).__name__})
        return _error("service_unavailable", "database unavailable, try again")

    @app.exception_handler(RegistryError)
    async def _registry(_r: Request, exc: RegistryError) -> JSONResponse:
        log.error("issuance registry error", extra={"error": str(exc)})
        return _error("service_unavailable", "resident registry unavailable, try again")


def create_issuance_app(service: IssuanceService, orders: OrderDesk) -> FastAPI:
    # The contract is served at /openapi.json; no Swagger page (it loads from a CDN).
    app = FastAPI(title="City kiosk issuance API", version="1", docs_url=None, redoc_url=None)
    _error_handlers(app)

    app.state.issuance_service = service

    @app.get(BASE_PATH + "/catalogue")
    def catalogue(_device: Device) -> CatalogueOut:
        return service.catalogue()

    @app.post(BASE_PATH + "/challenges")
    def new_challenge(device: Device) -> ChallengeOut:
        return service.new_challenge(device)

    @app.post(BASE_PATH + "/sessions")
    def open_session(device: Device, body: SessionIn) -> SessionOut:
        return service.open_session(device, body)

    @app.delete(BASE_PATH + "/sessions/{session_id}", status_code=204)
    def close_session(device: Device, session_id: str) -> Response:
        service.close_session(device, session_id)
        return Response(status_code=204)

    @app.post(BASE_PATH + "/orders")
    def create_order(device: Device, body: OrderIn) -> OrderOut:
        return orders.create(device, body)

    @app.post(BASE_PATH + "/orders/{order_id}/confirm")
    def confirm_order(device: Device, order_id: str, body: ConfirmIn) -> ConfirmOut:
        return orders.confirm(device, order_id, body)

    @app.post(BASE_PATH + "/orders/{order_id}/outcome")
    def order_outcome(device: Device, order_id: str, body: OutcomeIn) -> OrderOut:
        return orders.outcome(device, order_id, body)

    refusals: dict[int | str, dict[str, Any]] = {
        status: {"model": IssuanceErrorOut, "description": "Refused: see `error`"}
        for status in sorted(set(ERROR_CODES.values()))
    }
    for route in app.routes:
        if isinstance(route, APIRoute):
            route.responses = {**refusals, **route.responses}
    return app


def add_issuance_stats(app: FastAPI, db: Database, reader: Any, zone: Any) -> None:
    """``GET /api/issuance/stats?month=YYYY-MM`` on the staff API."""

    @app.get("/api/issuance/stats", dependencies=[reader])
    def issuance_statistics(
        month: Annotated[str, Query(pattern=MONTH.pattern, description="YYYY-MM, local")],
    ) -> dict[str, Any]:
        kinds = issuance_stats(db, month, zone)
        return {"month": month, "kinds": [vars(k) for k in kinds]}
