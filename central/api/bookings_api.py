"""The operator API for facilities' booking settings, rooms, closures and
bookings (``/api/facilities/{f}/settings``, ``/api/facilities/{f}/rooms``,
``/api/rooms/{id}``, ``/api/closures``, ``/api/bookings``).

A booking refused by a rule answers 409 with ``{"detail": {"code",
"message", "values"}}``: the codes of docs/booking.md (``slot_taken``,
``outside_opening_hours``, ...). ``operator`` is the bearer-token dependency;
its value is the caller as the audit trail names it.
"""

from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from central.errors import BookingRefused, ConflictError
from central.reservations.booking_rows import BookingView
from central.reservations.bookings import BookingService
from central.reservations.places import Places, StoredClosure
from central.reservations.rules import Closure, Facility, Identifier, Room


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BookingIn(_In):
    """A booking for a member, or a walk-in at the desk (``member_id`` null)."""

    room_id: Identifier
    member_id: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    starts_at: AwareDatetime
    ends_at: AwareDatetime


class BookingMove(_In):
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    room_id: Identifier | None = None


class BookingOut(BaseModel):
    id: str
    external_id: str | None
    facility: str
    room: str
    door: str
    member_id: str | None
    starts_at: datetime
    ends_at: datetime
    status: str
    source: str
    created_by: str
    reservation_id: str | None
    has_code: bool


class NewBookingOut(BookingOut):
    """``reservation_code``: typed at the door; shown now and never again."""

    reservation_code: str


class SlotOut(BaseModel):
    starts_at: datetime
    ends_at: datetime


class ClosureIn(Closure):
    """A closure of ``facility`` (``room_id`` null: all of it)."""

    facility: Identifier


class RefusalOut(BaseModel):
    code: str
    message: str
    values: dict[str, str | int]


class RefusedOut(BaseModel):
    detail: RefusalOut


def booking_out(view: BookingView) -> BookingOut:
    return BookingOut(**asdict(view))


def add_booking_errors(app: FastAPI) -> None:
    @app.exception_handler(BookingRefused)
    async def _refused(_r: Request, exc: BookingRefused) -> JSONResponse:
        body = {"code": exc.code, "message": exc.message, "values": exc.values}
        return JSONResponse({"detail": body}, status_code=409)

    @app.exception_handler(ValidationError)
    async def _invalid(_r: Request, exc: ValidationError) -> JSONResponse:
        # A change valid on its own but not merged with the stored state
        # (e.g. a member patch): as unprocessable as a bad body.
        details = [{"loc": e["loc"], "msg": e["msg"]} for e in exc.errors()]
        return JSONResponse({"detail": details}, status_code=422)


REFUSED: dict[int | str, dict[str, Any]] = {
    409: {"model": RefusedOut, "description": "Refused by a booking rule: see `detail.code`"}
}


def add_booking_routes(
    app: FastAPI, places: Places, service: BookingService, *, reader: Any, operator: Any
) -> None:
    Caller = Annotated[str, operator]

    @app.put("/api/facilities/{facility_id}/settings")
    def put_facility(facility_id: Identifier, body: Facility, caller: Caller) -> Facility:
        """Name, address, time zone and opening hours (created or replaced)."""
        if body.id != facility_id:
            raise ConflictError("the body's id is not the path's facility")
        return places.put_facility(body, caller)

    @app.get("/api/facilities/{facility_id}/settings", dependencies=[reader])
    def get_facility_settings(facility_id: str) -> Facility:
        return places.facility(facility_id)

    @app.get("/api/facilities/{facility_id}/rooms", dependencies=[reader])
    def list_rooms(facility_id: str) -> list[Room]:
        places.facility(facility_id)
        return places.rooms(facility_id)

    @app.post("/api/facilities/{facility_id}/rooms", status_code=201)
    def create_room(facility_id: Identifier, body: Room, caller: Caller) -> Room:
        if body.facility_id != facility_id:
            raise ConflictError("the room's facility_id is not the path's facility")
        return places.put_room(body, caller)

    @app.get("/api/rooms/{room_id}", dependencies=[reader])
    def get_room(room_id: str) -> Room:
        return places.room(room_id)

    @app.put("/api/rooms/{room_id}")
    def put_room(room_id: Identifier, body: Room, caller: Caller) -> Room:
        """Replace a room's door, name, rules, fee or hours (its facility stays)."""
        if body.id != room_id:
            raise ConflictError("the body's id is not the path's room")
        return places.put_room(body, caller)

    @app.get("/api/rooms/{room_id}/availability", dependencies=[reader])
    def availability(room_id: str, day: date) -> list[SlotOut]:
        """The free slots of the room on a local calendar day."""
        return [SlotOut(starts_at=s.starts_at, ends_at=s.ends_at)
                for s in service.availability(room_id, day)]  # fmt: skip

    _closure_routes(app, places, reader, Caller)
    _bookings(app, service, reader, Caller)


def _closure_routes(app: FastAPI, places: Places, reader: Any, caller: Any) -> None:
    @app.get("/api/closures", dependencies=[reader])
    def list_closures(facility: str, since: AwareDatetime) -> list[StoredClosure]:
        """The facility's closures that end after ``since``."""
        return places.closures(facility, since)

    @app.post("/api/closures", status_code=201)
    def add_closure(body: ClosureIn, who: caller) -> StoredClosure:
        closure = Closure.model_validate(body.model_dump(exclude={"facility"}))
        return places.add_closure(body.facility, closure, who)

    @app.delete("/api/closures/{closure_id}", status_code=204)
    def remove_closure(closure_id: str, who: caller) -> None:
        places.remove_closure(closure_id, who)


def _bookings(app: FastAPI, service: BookingService, reader: Any, caller: Any) -> None:
    @app.post("/api/bookings", status_code=201, responses=REFUSED)
    def create_booking(body: BookingIn, who: caller) -> NewBookingOut:
        """Book for a member (the rules apply) or a walk-in (``member_id`` null)."""
        made = service.create(body.room_id, body.starts_at, body.ends_at,
                              member_id=body.member_id, actor=who, source="staff")  # fmt: skip
        return NewBookingOut(**asdict(made.booking), reservation_code=made.code)

    @app.get("/api/bookings", dependencies=[reader])
    def list_bookings(
        *, facility: str | None = None, room: str | None = None, day: date | None = None,
        member_id: str | None = None, status: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    ) -> list[BookingOut]:  # fmt: skip
        """By facility, room and local day; or a member's upcoming bookings."""
        if member_id:
            return [booking_out(b) for b in service.member_bookings(member_id)]
        found = service.list_bookings(facility=facility, room=room, day=day, status=status,
                                      limit=limit)  # fmt: skip
        return [booking_out(b) for b in found]

    @app.get("/api/bookings/{booking_id}", dependencies=[reader])
    def get_booking(booking_id: str) -> BookingOut:
        return booking_out(service.get(booking_id))

    @app.post("/api/bookings/{booking_id}/move", responses=REFUSED)
    def move_booking(booking_id: str, body: BookingMove, who: caller) -> BookingOut:
        return booking_out(service.move(booking_id, body.starts_at, body.ends_at, actor=who,
                                        room_id=body.room_id))  # fmt: skip

    @app.post("/api/bookings/{booking_id}/cancel", responses=REFUSED)
    def cancel_booking(booking_id: str, who: caller, override_deadline: bool = False) -> BookingOut:
        """Cancel; after the member's deadline only with ``override_deadline``."""
        view = service.cancel(booking_id, actor=who, enforce_deadline=not override_deadline)
        return booking_out(view)
