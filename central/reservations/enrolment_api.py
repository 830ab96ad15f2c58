"""The card enrolment HTTP API (:mod:`contracts.enrolment`), mounted at
``/api/enrolment`` on the mutual-TLS device listener
(:mod:`central.issuance.server`). The device id is the verified client
certificate's CN (:func:`central.mtls.client_cn`), never a body field; every
refusal is an :class:`EnrolmentErrorOut` with its contract code."""

import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from central.errors import DatabaseError, EnrolmentRefused
from central.mtls import client_cn
from central.reservations.enrolment import EnrolmentService
from contracts.enrolment import (
    BASE_PATH,
    ERROR_CODES,
    CardIn,
    CardOut,
    EnrolmentErrorOut,
    TicketIn,
    TicketOut,
)

log = logging.getLogger(__name__)


def _error(code: str, message: str, retry_after: int | None = None) -> JSONResponse:
    body = EnrolmentErrorOut(error=code, message=message, retry_after_seconds=retry_after)
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True), ERROR_CODES[code], headers=headers
    )


def create_enrolment_app(
    service: EnrolmentService, enrolled: Callable[[], None] = lambda: None
) -> FastAPI:
    """The app to mount at :data:`contracts.enrolment.BASE_PATH`; ``enrolled``
    runs after a card is committed (it wakes the delta publisher)."""
    app = FastAPI(title="City kiosk card enrolment API", version="1")

    @app.exception_handler(EnrolmentRefused)
    async def _refused(_r: Request, exc: EnrolmentRefused) -> JSONResponse:
        return _error(exc.code, exc.message, exc.retry_after)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_r: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error("request_invalid", f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(DatabaseError)
    async def _database(_r: Request, exc: DatabaseError) -> JSONResponse:
        log.error("enrolment database error", extra={"error": type(exc).__name__})
        return _error("service_unavailable", "database unavailable, try again")

    def device(request: Request) -> str:
        return service.check_device(client_cn(request))

    Device = Annotated[str, Depends(device)]

    @app.post("/tickets")
    def redeem_code(device: Device, body: TicketIn) -> TicketOut:
        return service.redeem(device, body.code)

    @app.post("/cards")
    def enrol_card(device: Device, body: CardIn) -> CardOut:
        done = service.enrol(device, body)
        enrolled()
        return done

    @app.delete("/tickets/{ticket}", status_code=204)
    def close_ticket(device: Device, ticket: str) -> Response:
        service.close(device, ticket)
        return Response(status_code=204)

    refusals: dict[int | str, dict[str, Any]] = {
        status: {"model": EnrolmentErrorOut, "description": "Refused: see `error`"}
        for status in sorted(set(ERROR_CODES.values()))
    }
    for route in app.routes:
        if isinstance(route, APIRoute):
            route.responses = {**refusals, **route.responses}
    return app


def mount_enrolment(
    app: FastAPI, service: EnrolmentService, enrolled: Callable[[], None] = lambda: None
) -> None:
    """Serve enrolment on the device listener's app beside issuance."""
    app.mount(BASE_PATH, create_enrolment_app(service, enrolled))
