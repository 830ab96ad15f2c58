"""``python -m central serve``: the HTTP API (FastAPI), the dashboard and the
booking site, behind one security-headers middleware (``central.websec``).
``/openapi.json``, ``/docs`` and ``/metrics`` need the metadata token or are
on a separate listener (``central.api.metadata``).

Every ``/api`` route needs ``Authorization: Bearer <token>`` (``python -m
central token create --role ...``). Reservation changes are committed with a
facility version bump, then the delta publisher sends them to the facility's
devices.
"""

import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Generic, Self, TypeVar
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from central.api.audit_api import add_audit_route
from central.api.bookings_api import add_booking_errors, add_booking_routes
from central.api.commands_api import add_command_routes
from central.api.members_api import add_member_routes
from central.api.metadata import MetadataListener, add_metadata
from central.api.quarantine_api import add_quarantine_route
from central.api.tokens import TokenStore, role_allows
from central.api.use_api import add_use_route
from central.audit.web import AuditRequests, name_caller
from central.booking.app import add_booking_site
from central.booking.settings import BookingSection
from central.commands import CommandService
from central.configpush import ConfigPushService
from central.db.engine import Database, aware
from central.errors import ConflictError, DatabaseError, NotFoundError
from central.ingest.store import IngestStore
from central.issuance.api import add_issuance_stats
from central.opendata.web import add_opendata
from central.ops.api import add_ops_api
from central.ops.dashboard.config_page import add_config_pages
from central.ops.dashboard.views import add_dashboard
from central.reservations.bookings import BookingService
from central.reservations.importer import Importer
from central.reservations.members import ENROLMENT_KEY_SCOPE, MemberService
from central.reservations.places import Places
from central.reservations.publisher import DeltaPublisher
from central.reservations.staff_members import add_member_pages
from central.reservations.staff_places import add_place_pages
from central.reservations.staff_site import TEMPLATES_DIR as STAFF_TEMPLATES
from central.reservations.staff_site import StaffServices
from central.reservations.staff_views import add_staff_pages
from central.reservations.store import Change, ReservationStore
from central.smtp import SmtpServer
from central.websec import DEFAULT_WEB, SecurityHeaders, WebOptions
from contracts.commands import CommandResult
from contracts.mqtt import Identifier, Reservation
from contracts.reservations_hash import active_hash, code_hash

Ref = Annotated[str, Field(min_length=1, max_length=128)]
Code = Annotated[str, Field(min_length=4, max_length=64)]
T = TypeVar("T")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReservationIn(_In):
    """A new reservation: who by opaque credential references and/or a code
    (the code is stored only hashed), where (door or room), when."""

    id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    facility: Identifier
    door: Identifier
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    credential_refs: Annotated[list[Ref], Field(max_length=32)] = []
    code: Code | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class ReservationPatch(_In):
    door: Identifier | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    credential_refs: Annotated[list[Ref], Field(max_length=32)] | None = None
    code: Code | None = None


class ReservationOut(BaseModel):
    id: str
    facility: str
    door: str
    starts_at: datetime
    ends_at: datetime
    credential_refs: list[str]
    has_code: bool
    status: str
    facility_version: int | None = None


class EventOut(BaseModel):
    pk: int
    event_id: str
    device: str
    seq: int
    type: str
    at: datetime
    clock_trusted: bool
    data: dict[str, Any]
    received_at: datetime


class Page(BaseModel, Generic[T]):
    items: list[T]
    next: str | None = None


class FacilityOut(BaseModel):
    """Version and the active-window hash (v1, the next 24 h from this hour)."""

    id: str
    version: int
    active_hash: str


def _out(r: Reservation, version: int | None = None) -> ReservationOut:
    return ReservationOut(
        id=r.id, facility=r.facility, door=r.door, starts_at=r.starts_at, ends_at=r.ends_at,
        credential_refs=list(r.credential_refs), has_code=r.code_hash is not None,
        status=r.status, facility_version=version,
    )  # fmt: skip


def create_app(
    db: Database,
    publisher: DeltaPublisher | None = None,
    page_size_max: int = 1000,
    now: Callable[[], datetime] | None = None,
    *,
    code_key: Callable[[str], bytes],
    issuance_zone: str = "Asia/Tokyo",
    booking_site: BookingSection | None = None,
    booking_smtp: SmtpServer | None = None,
    checkin_grace: timedelta = timedelta(minutes=15),
    staff_calls_changed: Callable[[], None] = lambda: None,
    web: WebOptions = DEFAULT_WEB,
    opendata_folder: Path | None = None,
    commands: CommandService | None = None,
) -> FastAPI:
    """The API app with the dashboard and metrics; ``publisher`` (optional) is
    started and closed with the app; ``now`` is the dashboard's clock (tests);
    ``code_key(facility)`` the fleet's key for reservation-code hashes;
    ``booking_site`` mounts the residents' site under /booking/ (its SMTP
    server from the section, or ``booking_smtp``); ``staff_calls_changed``
    wakes the staff call relay after the dashboard changed a call; ``web``
    the public address, trusted proxies and where the metadata is;
    ``opendata_folder`` serves the published open data under /opendata/;
    ``commands`` issues remote commands (None: not configured, refused)."""
    listener: list[MetadataListener] = []

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if meta is not None and web.metadata_listener is not None:
            listener.append(MetadataListener(meta, *web.metadata_listener).start())
        if publisher is not None:
            publisher.start()
        try:
            yield
        finally:
            if publisher is not None:
                publisher.close()
            for running in listener:
                running.close()

    app = FastAPI(title="City kiosk central API", version="1", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)  # fmt: skip
    app.add_middleware(SecurityHeaders, https=web.https,
                       cacheable=("/booking/static/", "/static/"))  # fmt: skip
    app.add_middleware(AuditRequests, db=db, proxies=web.networks())
    need = _token_guard(TokenStore(db))

    _error_handlers(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    store = ReservationStore(db)
    _reservation_routes(
        app, store=store, publisher=publisher, need=need,
        page_size_max=page_size_max, key=code_key,
    )  # fmt: skip
    staff = _booking_api(app, db, store, publisher=publisher, need=need, code_key=code_key,
                         now=now, grace=checkin_grace)  # fmt: skip
    if booking_site is not None:
        add_booking_site(app, booking_site, db=db, bookings=staff.bookings,
                         members=staff.members, code_key=code_key, now=staff.bookings.now,
                         smtp=booking_smtp)  # fmt: skip
    ingest = IngestStore(db, "api")
    _fleet_routes(app, ingest, need("reader"), page_size_max)
    add_quarantine_route(app, ingest, reader=need("reader"), page_size_max=page_size_max)
    add_ops_api(app, db, need("reader"), need("operator"))
    add_issuance_stats(app, db, need("reader"), ZoneInfo(issuance_zone))
    add_audit_route(app, db, need("admin"))
    commands = commands or CommandService(db, None)
    add_command_routes(app, commands, reader=need("reader"), operator=need("operator"))
    _document_errors(app)
    meta = add_metadata(app, db, web)
    dashboard = add_dashboard(app, db, now, template_dirs=[STAFF_TEMPLATES],
                              staff_calls_changed=staff_calls_changed, web=web,
                              commands=commands)  # fmt: skip
    add_config_pages(app, dashboard, config_push(db, commands))
    add_staff_pages(app, dashboard, staff)
    add_member_pages(app, dashboard, staff)
    add_place_pages(app, dashboard, staff)
    if opendata_folder is not None:
        add_opendata(app, opendata_folder)
    return app


def config_push(db: Database, commands: CommandService) -> ConfigPushService:
    """Configuration push sending ``config.apply`` through the command service,
    told of every ``config.apply`` result the relay stores."""
    push = ConfigPushService(
        db, lambda device, name, args, issuer, source: commands.issue(
            device, name, args, issuer=issuer, source=source)
    )  # fmt: skip

    def record(result: CommandResult) -> None:
        if result.name == "config.apply":
            push.record_result(result.device, result.id, state=result.state, code=result.code,
                               message=result.message, now=result.at)  # fmt: skip

    commands.result_hooks.append(record)
    return push


def _token_guard(tokens: TokenStore) -> Callable[[str], Any]:
    """``need(role)``: a dependency admitting a bearer token of at least that
    role; it names the caller (``token:<id>``) for the audit trail."""
    bearer = HTTPBearer(auto_error=False)

    def need(role: str) -> Any:
        def check(
            request: Request,
            creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        ) -> str:
            if creds is None or creds.scheme.lower() != "bearer":
                raise HTTPException(401, "bearer token required",
                                    headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
            found = tokens.holder(creds.credentials)
            if found is None:
                raise HTTPException(401, "unknown or revoked token",
                                    headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
            token_id, have = found
            name_caller(request, f"token:{token_id}")
            if not role_allows(have, role):
                raise HTTPException(403, f"this needs the {role} role (token has {have})")
            return f"token:{token_id}"  # the caller, as the audit trail names it

        return Depends(check)

    return need


def _booking_api(
    app: FastAPI,
    db: Database,
    store: ReservationStore,
    *,
    publisher: DeltaPublisher | None,
    need: Callable[[str], Any],
    code_key: Callable[[str], bytes],
    now: Callable[[], datetime] | None,
    grace: timedelta,
) -> StaffServices:
    """Members, cards, rooms, closures, bookings, use and the import; every
    change wakes the delta publisher so doors hear of it at once. Returns the
    services for the staff pages."""
    clock = now or (lambda: datetime.now(UTC))
    places = Places(db)
    bookings = BookingService(db, store, code_key, clock)
    members = MemberService(db, store, code_key(ENROLMENT_KEY_SCOPE))
    reader, operator = need("reader"), need("operator")
    add_booking_errors(app)
    add_booking_routes(app, places, bookings, reader=reader, operator=operator)
    add_member_routes(app, members, Importer(db, store), reader=reader, operator=operator,
                      now=clock)  # fmt: skip
    add_use_route(app, places, db, reader=reader, grace=grace, now=clock)

    @app.middleware("http")
    async def _wake_publisher(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        if publisher is not None and request.method != "GET" and response.status_code < 400:
            publisher.notify()  # the booking site answers a change with a 303 redirect
        return response

    return StaffServices(bookings, members, places, grace)


class ErrorOut(BaseModel):
    detail: Any


# Answers any API operation may give besides its own (auth, missing, conflict,
# database down), written into the OpenAPI document so clients know them.
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "No or unknown bearer token"},
    403: {"model": ErrorOut, "description": "The token's role is not enough"},
    404: {"model": ErrorOut, "description": "No such object"},
    409: {"model": ErrorOut, "description": "Conflicts with the current state"},
    503: {"model": ErrorOut, "description": "Database unavailable; retry"},
}


def _document_errors(app: FastAPI) -> None:
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path.startswith("/api/"):
            route.responses = {**COMMON_ERRORS, **route.responses}


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotFoundError)
    async def _not_found(_r: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(ConflictError)
    async def _conflict(_r: Request, exc: ConflictError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(DatabaseError)
    async def _db(_r: Request, exc: DatabaseError) -> JSONResponse:
        return JSONResponse({"detail": "database unavailable, try again"}, status_code=503)

    @app.exception_handler(OverflowError)
    async def _overflow(_r: Request, _exc: OverflowError) -> JSONResponse:
        # A valid date at the ends of the calendar (year 1, year 9999) leaves
        # it once a time zone applies: the caller's value, not our fault.
        return JSONResponse({"detail": "a date or time is out of range"}, status_code=409)


def _reservation_routes(
    app: FastAPI,
    *,
    store: ReservationStore,
    publisher: DeltaPublisher | None,
    need: Callable[[str], Any],
    page_size_max: int,
    key: Callable[[str], bytes],
) -> None:
    reader, operator = need("reader"), need("operator")

    def committed(change: Change) -> ReservationOut:
        if change.delta is not None and publisher is not None:
            publisher.notify()
        version = change.delta.version if change.delta else None
        return _out(change.reservations[0], version)

    @app.post("/api/reservations", status_code=201, dependencies=[operator])
    def create_reservation(body: ReservationIn) -> ReservationOut:
        hashed = code_hash(key(body.facility), body.facility, body.code) if body.code else None
        reservation = Reservation(
            id=body.id or uuid.uuid4().hex, facility=body.facility, door=body.door,
            starts_at=body.starts_at, ends_at=body.ends_at,
            credential_refs=body.credential_refs,
            code_hash=hashed,
        )  # fmt: skip
        return committed(store.create(reservation))

    @app.get("/api/reservations", dependencies=[reader])
    def list_reservations(
        facility: str | None = None,
        door: str | None = None,
        status: str | None = None,
        after: str = "",
        limit: Annotated[int, Query(ge=1)] = 100,
    ) -> Page[ReservationOut]:
        limit = min(limit, page_size_max)
        rows = store.list_reservations(
            facility=facility, door=door, status=status, after=after, limit=limit
        )
        nxt = rows[-1].id if len(rows) == limit else None
        return Page[ReservationOut](items=[_out(r) for r in rows], next=nxt)

    @app.get("/api/reservations/{reservation_id}", dependencies=[reader])
    def get_reservation(reservation_id: str) -> ReservationOut:
        return _out(store.get(reservation_id))

    @app.patch("/api/reservations/{reservation_id}", dependencies=[operator])
    def update_reservation(reservation_id: str, body: ReservationPatch) -> ReservationOut:
        fields = body.model_dump(exclude_unset=True, exclude={"code"})
        current = store.get(reservation_id)
        if body.code is not None:
            fields["code_hash"] = code_hash(key(current.facility), current.facility, body.code)
        starts = fields.get("starts_at", current.starts_at)
        if fields.get("ends_at", current.ends_at) <= starts:
            raise HTTPException(422, "ends_at must be after starts_at")
        return committed(store.update(reservation_id, fields))

    @app.delete("/api/reservations/{reservation_id}", dependencies=[operator])
    def cancel_reservation(reservation_id: str) -> ReservationOut:
        return committed(store.cancel(reservation_id))

    @app.get("/api/facilities/{facility}", dependencies=[reader])
    def get_facility(facility: str) -> FacilityOut:
        version, active = store.active_state(facility)
        digest = active_hash(active, time.time())
        return FacilityOut(id=facility, version=version, active_hash=digest)


def _fleet_routes(app: FastAPI, ingest: IngestStore, reader: Any, page_size_max: int) -> None:
    @app.get("/api/events", dependencies=[reader])
    def list_events(
        *,
        device: str | None = None,
        type: Annotated[list[str] | None, Query()] = None,
        since: AwareDatetime | None = None,
        until: AwareDatetime | None = None,
        after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
        limit: Annotated[int, Query(ge=1)] = 100,
    ) -> Page[EventOut]:
        limit = min(limit, page_size_max)
        rows = ingest.query_events(device=device, types=type or [], since=since, until=until,
                                   after=after, limit=limit)  # fmt: skip
        items = [EventOut(**{**r, "at": aware(r["at"]), "received_at": aware(r["received_at"])})
                 for r in rows]  # fmt: skip
        nxt = str(items[-1].pk) if len(items) == limit else None
        return Page[EventOut](items=items, next=nxt)

    @app.get("/api/devices", dependencies=[reader])
    def list_devices() -> list[dict[str, Any]]:
        return [_device(d) for d in ingest.list_devices()]

    @app.get("/api/devices/{device}", dependencies=[reader])
    def get_device(device: str) -> dict[str, Any]:
        for d in ingest.list_devices():
            if d["id"] == device:
                return _device(d)
        raise NotFoundError(f"no device {device!r}")


def _device(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in ("status_at", "last_seen", "health_at"):
        value = out.get(key)
        out[key] = aware(value).isoformat() if value else None
    return out
