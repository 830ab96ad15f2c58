"""Remote commands in the API (docs/central.md, "Commands"):
``POST /api/devices/{d}/commands`` and ``POST /api/facilities/{f}/commands``
(operator token), ``GET /api/devices/{d}/commands`` and
``GET /api/commands/{id}`` (reader token).

A token may not give ``door.unlock`` or ``door.lockdown``: those need a
fresh second factor of a person, which only the dashboard asks for (403
``second_factor_required``). Without a signing key every POST answers 503
``not_configured``. A refusal is ``{"detail": message, "error": code}``.
"""

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from central.audit import SOURCE
from central.commands import CommandRefused, CommandService
from contracts.commands import MAX_LIFETIME, CommandName
from contracts.mqtt import Identifier


class CommandIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: CommandName
    args: dict[str, Any] = Field(default_factory=dict)
    # Default: commands.default_lifetime_seconds.
    lifetime_seconds: Annotated[float, Field(gt=0, le=MAX_LIFETIME.total_seconds())] | None = None


class CommandOut(BaseModel):
    id: str
    device: str
    facility: str | None
    name: str
    args: dict[str, Any]
    issued_by: str
    issued_at: datetime
    expires_at: datetime
    state: str
    code: str
    message: str
    detail: dict[str, Any]
    delivered_at: datetime | None
    finished_at: datetime | None
    attachment_type: str | None = None
    attachment_sha256: str | None = None


class IssuedOut(BaseModel):
    ids: list[str]


def command_out(row: dict[str, Any]) -> CommandOut:
    fields = {k: row[k] for k in CommandOut.model_fields if k in row}
    return CommandOut.model_validate({**fields, "attachment_type": row.get("file_type"),
                                      "attachment_sha256": row.get("file_sha256")})  # fmt: skip


def add_command_routes(app: FastAPI, service: CommandService, *, reader: Any,
                       operator: Any) -> None:  # fmt: skip
    """``reader``/``operator``: the token dependencies (they name the caller)."""

    @app.exception_handler(CommandRefused)
    async def _refused(_r: Request, exc: CommandRefused) -> JSONResponse:
        return JSONResponse({"detail": exc.message, "error": exc.code}, exc.status)

    @app.post("/api/devices/{device}/commands", status_code=201)
    def issue_command(device: str, body: CommandIn,
                      caller: Annotated[str, operator]) -> CommandOut:  # fmt: skip
        lifetime = None
        if body.lifetime_seconds is not None:
            lifetime = timedelta(seconds=body.lifetime_seconds)
        command_id = service.issue(device[:64], body.name, body.args, issuer=caller,
                                   source=SOURCE.get(), lifetime=lifetime)  # fmt: skip
        return command_out(service.get(command_id) or {})

    @app.post("/api/facilities/{facility}/commands", status_code=201)
    def issue_facility_command(facility: Identifier, body: CommandIn,
                               caller: Annotated[str, operator]) -> IssuedOut:  # fmt: skip
        ids = service.issue_facility(facility, body.name, body.args, issuer=caller,
                                     source=SOURCE.get())  # fmt: skip
        return IssuedOut(ids=ids)

    @app.get("/api/devices/{device}/commands", dependencies=[reader])
    def list_commands(
        device: str, limit: Annotated[int, Query(ge=1, le=500)] = 50
    ) -> list[CommandOut]:
        return [command_out(r) for r in service.listing(device=device, limit=limit)]

    @app.get("/api/commands/{command_id}", dependencies=[reader])
    def get_command(command_id: str) -> CommandOut:
        row = service.get(command_id[:64])
        if row is None:
            raise HTTPException(404, f"no command {command_id[:64]!r}")
        return command_out(row)
