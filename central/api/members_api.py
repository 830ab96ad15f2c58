"""The operator API for members, their cards and enrolment codes, and the
import from an existing booking system (``/api/members``, ``/api/import``).

``operator`` is the bearer-token dependency, whose value is the caller as
the audit trail names it (``token:<id>``). A display name or e-mail address
is returned to staff but never logged.
"""

from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from central.errors import ConflictError
from central.reservations.importer import Importer, ImportReport
from central.reservations.members import Card, Member, MemberIn, MemberService
from contracts.enrolment import Language

MAX_IMPORT_BYTES = 20 * 1024 * 1024


class MemberPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: str | None = Field(default=None, min_length=1, max_length=100)
    email: str | None = Field(default=None, max_length=254)
    language: Language | None = None
    external_number: str | None = Field(default=None, min_length=1, max_length=64)
    status: Literal["active", "suspended"] | None = None


class MemberOut(BaseModel):
    id: str
    external_number: str | None
    display_name: str
    email: str
    language: str
    status: str
    created_at: datetime
    updated_at: datetime


class CardOut(BaseModel):
    id: str
    member_id: str
    credential_ref: str
    kind: str
    label: str
    status: str
    enrolled_at: datetime
    enrolled_by: str
    revoked_at: datetime | None
    revoked_by: str | None


class EnrolmentCodeOut(BaseModel):
    """The code is shown now and never again (only its keyed hash is kept)."""

    code: str
    expires_at: datetime


class MemberPage(BaseModel):
    items: list[MemberOut]
    next: str | None = None


class RowErrorOut(BaseModel):
    line: int
    code: str
    column: str | None
    message: str


class ImportOut(BaseModel):
    created: int
    updated: int
    unchanged: int
    errors: list[RowErrorOut]


def member_out(member: Member) -> MemberOut:
    return MemberOut(**asdict(member))


def card_out(card: Card) -> CardOut:
    return CardOut(**asdict(card))


def import_out(report: ImportReport) -> ImportOut:
    errors = [RowErrorOut(line=e.line, code=e.code, column=e.column, message=e.message)
              for e in report.errors]  # fmt: skip
    return ImportOut(created=report.created, updated=report.updated,
                     unchanged=report.unchanged, errors=errors)  # fmt: skip


def add_member_routes(
    app: FastAPI, members: MemberService, importer: Importer, *, reader: Any, operator: Any,
    now: Callable[[], datetime],
) -> None:  # fmt: skip
    Caller = Annotated[str, operator]

    @app.post("/api/members", status_code=201)
    def create_member(body: MemberIn, caller: Caller) -> MemberOut:
        return member_out(members.create(body, caller))

    @app.get("/api/members", dependencies=[reader])
    def list_members(
        email: str | None = None, external_number: str | None = None, after: str = "",
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> MemberPage:  # fmt: skip
        """All members by id, or the one with this e-mail address or number."""
        if email or external_number:
            return MemberPage(items=[member_out(members.find(
                email=email, external_number=external_number))])  # fmt: skip
        found = members.list_members(after=after, limit=limit)
        nxt = found[-1].id if len(found) == limit else None
        return MemberPage(items=[member_out(m) for m in found], next=nxt)

    @app.get("/api/members/{member_id}", dependencies=[reader])
    def get_member(member_id: str) -> MemberOut:
        return member_out(members.get(member_id))

    @app.patch("/api/members/{member_id}")
    def update_member(member_id: str, body: MemberPatch, caller: Caller) -> MemberOut:
        """Change fields; ``status: suspended`` suspends (no new bookings)."""
        return member_out(members.update(member_id, body.model_dump(exclude_unset=True), caller))

    @app.get("/api/members/{member_id}/cards", dependencies=[reader])
    def list_cards(member_id: str) -> list[CardOut]:
        return [card_out(c) for c in members.cards(member_id)]

    @app.delete("/api/members/{member_id}/cards/{card_id}")
    def revoke_card(member_id: str, card_id: str, caller: Caller) -> CardOut:
        """Revoke; the member's upcoming bookings are re-sent to the doors without it."""
        return card_out(members.revoke_card(member_id, card_id, caller))

    @app.post("/api/members/{member_id}/enrolment-codes", status_code=201)
    def issue_enrolment_code(member_id: str, caller: Caller) -> EnrolmentCodeOut:
        issued = members.issue_code(member_id, caller, now())
        return EnrolmentCodeOut(code=issued.code, expires_at=issued.expires_at)

    _import_routes(app, importer, Caller)


_CSV_BODY: dict[str, Any] = {
    "requestBody": {"content": {
        "text/csv": {"schema": {"type": "string"}},
        "application/json": {"schema": {"type": "object", "properties": {
            "csv": {"type": "string"}}, "required": ["csv"]}},
    }, "required": True},
}  # fmt: skip


class ImportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    csv: str


_UNREADABLE: dict[int | str, dict[str, Any]] = {
    422: {"description": 'A JSON body that is not `{"csv": "..."}`'}
}


async def _csv_of(request: Request) -> bytes | str:
    """A CSV body (UTF-8 or Shift_JIS), or JSON ``{"csv": "..."}``."""
    raw = await request.body()
    if len(raw) > MAX_IMPORT_BYTES:
        raise ConflictError(f"the file is larger than {MAX_IMPORT_BYTES} bytes")
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = ImportIn.model_validate_json(raw)
        except ValueError as exc:
            raise RequestValidationError([{"loc": ("body", "csv"), "msg": str(exc)}]) from None
        return body.csv
    return raw


def _import_routes(app: FastAPI, importer: Importer, caller: Any) -> None:
    @app.post("/api/import/members", openapi_extra=_CSV_BODY, responses=_UNREADABLE)
    async def import_members(request: Request, who: caller) -> ImportOut:
        """Members keyed by ``external_number``; bad rows reported, good ones applied."""
        data = await _csv_of(request)
        return import_out(await run_in_threadpool(importer.members_csv, data, who))

    @app.post("/api/import/reservations", openapi_extra=_CSV_BODY, responses=_UNREADABLE)
    async def import_reservations(request: Request, who: caller) -> ImportOut:
        """Reservations keyed by ``external_id``; see docs/booking.md for the columns."""
        data = await _csv_of(request)
        return import_out(await run_in_threadpool(importer.reservations_csv, data, who))
