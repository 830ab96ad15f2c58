"""Staff pages for a facility's settings (name, address, time zone, opening
hours) and its rooms (door, fee, booking rules, own opening hours). Mounted
into the dashboard like :mod:`.staff_views`; every change goes through
:class:`~central.reservations.places.Places`, which validates it with the
models of :mod:`.rules` and audits it as ``staff:<name>``.

Opening hours are typed per weekday as windows ``09:00-12:00, 13:00-21:00``
(empty: closed). Validation errors are shown next to their field, in the
page's language (status 422), with what was typed kept in the form.

A room with bookings that have not ended cannot change its door id: each
booking carries its door (the devices of that door hold it), so the page
refuses and says to move or cancel them first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from central.errors import ConflictError, NotFoundError
from central.ops.staff import StaffSession
from central.reservations import staff_read
from central.reservations.rules import (
    WEEKDAYS,
    BookingRules,
    Facility,
    OpeningHours,
    OpeningWindow,
    Room,
)
from central.reservations.staff_site import StaffServices, StaffSite, actor

# A field's error: a gettext message id and the values for its placeholders.
Error = tuple[str, dict[str, Any]]
Errors = dict[str, Error]

RULE_FIELDS = (
    "slot_minutes", "min_duration_minutes", "max_duration_minutes", "max_days_ahead",
    "cancellation_deadline_hours", "max_active_bookings", "max_hours_per_week",
)  # fmt: skip
OPTIONAL_RULES = ("max_active_bookings", "max_hours_per_week")  # empty: no limit
_WINDOW = re.compile(r"^\s*(\d{1,2}:\d{2})\s*[-–~〜]\s*(\d{1,2}:\d{2})\s*$")
_SEPARATORS = re.compile(r"[,、，]")


def add_place_pages(app: FastAPI, site: StaffSite, services: StaffServices) -> None:
    """Mount the facility settings and room pages."""
    _facility_routes(app, site, services)
    _room_routes(app, site, services)


# opening hours in forms -------------------------------------------------------


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def hours_fields(hours: OpeningHours | None) -> dict[str, str]:
    """The form's ``hours_<day>`` texts of ``hours`` (none: all empty)."""
    weekly = hours.weekly if hours else {}
    return {f"hours_{day}": ", ".join(f"{_clock(w.opens)}-{_clock(w.closes)}"
                                      for w in weekly.get(day, ()))
            for day in WEEKDAYS}  # fmt: skip


def _window(text: str) -> OpeningWindow | Error:
    match = _WINDOW.match(text)
    if match is None:
        return "Write each window as 09:00-17:00, separated by commas.", {"value": text.strip()}
    ends = []
    for part in match.groups():
        hours, minutes = (int(x) for x in part.split(":"))
        if minutes >= 60 or hours * 60 + minutes > 24 * 60:
            return "{value} is not a time between 00:00 and 24:00.", {"value": part}
        ends.append(f"{hours:02d}:{minutes:02d}")
    try:
        return OpeningWindow.model_validate({"opens": ends[0], "closes": ends[1]})
    except ValidationError:
        return "{value}: a window must close after it opens.", {"value": text.strip()}


def parse_hours(form: Mapping[str, str]) -> tuple[OpeningHours | None, Errors]:
    """The weekly hours typed in ``hours_<day>`` fields, or the errors per field."""
    errors: Errors = {}
    weekly: dict[str, tuple[OpeningWindow, ...]] = {}
    for day in WEEKDAYS:
        name = f"hours_{day}"
        parts = [p for p in _SEPARATORS.split(form.get(name, "")) if p.strip()]
        windows = []
        for part in parts:
            found = _window(part)
            if isinstance(found, tuple):
                errors[name] = found
                break
            windows.append(found)
        else:
            try:
                OpeningHours.model_validate({"weekly": {day: windows}})
            except ValidationError:
                errors[name] = "The windows overlap.", {}
            weekly[day] = tuple(windows)
    if errors:
        return None, errors
    return OpeningHours.model_validate({"weekly": {d: w for d, w in weekly.items() if w}}), {}


# validation errors in words ----------------------------------------------------------


def field_errors(exc: ValidationError) -> Errors:
    """The model's errors per form field, as message ids of the dashboard's
    catalogues (a model-level rule error goes to the field it is about)."""
    errors: Errors = {}
    for error in exc.errors():
        names = [str(x) for x in error["loc"] if isinstance(x, str)]
        name = names[-1] if names and names[-1] != "rules" else ""
        kind, ctx, msg = error["type"], error.get("ctx") or {}, str(error["msg"])
        found: Error
        if kind in ("int_parsing", "int_type", "int_from_float"):
            found = "Enter a whole number.", {}
        elif kind == "greater_than_equal":
            found = "At least {limit}.", {"limit": ctx.get("ge")}
        elif kind == "less_than_equal":
            found = "At most {limit}.", {"limit": ctx.get("le")}
        elif kind == "string_pattern_mismatch":
            found = "Lowercase letters a-z, digits and hyphens; at most 63 characters.", {}
        elif kind in ("string_too_short", "missing"):
            found = "Required.", {}
        elif kind == "string_too_long":
            found = "At most {limit} characters.", {"limit": ctx.get("max_length")}
        elif "multiple of slot_minutes" in msg:
            name = msg.removeprefix("Value error, ").split(maxsplit=1)[0]
            found = "Must be a whole number of slots.", {}
        elif "must not exceed" in msg:
            name, found = "min_duration_minutes", ("Must not be longer than the maximum.", {})
        elif "time zone" in msg:
            found = "Unknown time zone (for example Asia/Tokyo).", {}
        else:
            found = "Not valid: {detail}", {"detail": msg}
        errors.setdefault(name, found)
    return errors


# facility settings ---------------------------------------------------------------


def _facility_routes(app: FastAPI, site: StaffSite, s: StaffServices) -> None:
    def facility_or_404(facility_id: str) -> Facility:
        try:
            return s.places.facility(facility_id)
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None

    def show(
        request: Request, session: StaffSession, facility: Facility, *,
        form: Mapping[str, str], errors: Errors, saved: bool = False,
    ) -> HTMLResponse:  # fmt: skip
        return site.page(request, "staff/facility_settings.html", session,
                         422 if errors else 200, facility=facility, form=form, errors=errors,
                         weekdays=WEEKDAYS, saved=saved)  # fmt: skip

    @app.get("/facilities/{facility_id}/settings", response_class=HTMLResponse,
             include_in_schema=False)  # fmt: skip
    def settings_page(request: Request, facility_id: str, saved: str = "") -> Response:
        session = site.require(request)
        facility = facility_or_404(facility_id)
        form = {"name": facility.name, "address": facility.address,
                "timezone": facility.timezone, **hours_fields(facility.opening_hours)}  # fmt: skip
        return show(request, session, facility, form=form, errors={}, saved=bool(saved))

    def save(request: Request, facility_id: str, form: dict[str, str]) -> Response:
        session = site.require(request, "operator")
        site.check_csrf(session, form.get("csrf", ""))
        facility = facility_or_404(facility_id)
        hours, errors = parse_hours(form)
        values = {"id": facility_id, "name": form.get("name", "").strip(),
                  "address": form.get("address", "").strip(),
                  "timezone": form.get("timezone", "").strip(),
                  "opening_hours": hours or facility.opening_hours}  # fmt: skip
        try:
            new = Facility.model_validate(values)
        except ValidationError as exc:
            errors = {**field_errors(exc), **errors}
        if errors:
            return show(request, session, facility, form=form, errors=errors)
        s.places.put_facility(new, actor(session))
        return RedirectResponse(f"/facilities/{facility_id}/settings?saved=1", status_code=303)

    @app.post("/facilities/{facility_id}/settings", include_in_schema=False)
    async def save_settings(request: Request, facility_id: str) -> Response:
        form = await _form(request)
        result: Response = await run_in_threadpool(save, request, facility_id, form)
        return result


async def _form(request: Request) -> dict[str, str]:
    data = await request.form()
    return {k: v for k, v in data.items() if isinstance(v, str)}


# rooms -------------------------------------------------------------------------


def room_fields(room: Room | None, facility: Facility) -> dict[str, str]:
    """The room form's texts for ``room`` (none: a new room with the default rules)."""
    if room is None:
        rules = BookingRules().model_dump()
        return {"room_id": "", "name": "", "door_id": "", "fee_per_slot_yen": "0",
                **{k: "" if rules[k] is None else str(rules[k]) for k in RULE_FIELDS},
                **hours_fields(facility.opening_hours)}  # fmt: skip
    rules = room.rules.model_dump()
    return {"room_id": room.id, "name": room.name, "door_id": room.door_id,
            "fee_per_slot_yen": str(room.fee_per_slot_yen),
            **{k: "" if rules[k] is None else str(rules[k]) for k in RULE_FIELDS},
            "own_hours": "1" if room.opening_hours else "",
            **hours_fields(room.opening_hours or facility.opening_hours)}  # fmt: skip


def _room_routes(app: FastAPI, site: StaffSite, s: StaffServices) -> None:
    def facility_or_404(facility_id: str) -> Facility:
        try:
            return s.places.facility(facility_id)
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None

    def room_or_404(facility_id: str, room_id: str) -> Room:
        try:
            room = s.places.room(room_id)
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        if room.facility_id != facility_id:
            raise HTTPException(404, f"no room {room_id!r} in facility {facility_id!r}")
        return room

    def show(request: Request, session: StaffSession, facility: Facility, room: Room | None,
             *, form: Mapping[str, str], errors: Errors) -> HTMLResponse:  # fmt: skip
        upcoming = staff_read.upcoming_bookings(s.bookings.db, room.id, site.now()) if room else 0
        return site.page(request, "staff/room_form.html", session, 422 if errors else 200,
                         facility=facility, room=room, form=form, errors=errors,
                         weekdays=WEEKDAYS, rule_fields=RULE_FIELDS,
                         optional_rules=OPTIONAL_RULES, upcoming=upcoming)  # fmt: skip

    @app.get("/facilities/{facility_id}/rooms", response_class=HTMLResponse,
             include_in_schema=False)  # fmt: skip
    def rooms_page(request: Request, facility_id: str) -> Response:
        session = site.require(request)
        facility = facility_or_404(facility_id)
        return site.page(request, "staff/rooms.html", session, facility=facility,
                         rooms=s.places.rooms(facility_id), hours=hours_fields)  # fmt: skip

    @app.get("/facilities/{facility_id}/rooms/new", response_class=HTMLResponse,
             include_in_schema=False)  # fmt: skip
    def new_room_page(request: Request, facility_id: str) -> Response:
        session = site.require(request, "operator")
        facility = facility_or_404(facility_id)
        return show(request, session, facility, None, form=room_fields(None, facility), errors={})

    @app.get("/facilities/{facility_id}/rooms/{room_id}", response_class=HTMLResponse,
             include_in_schema=False)  # fmt: skip
    def room_page(request: Request, facility_id: str, room_id: str) -> Response:
        session = site.require(request)
        facility = facility_or_404(facility_id)
        room = room_or_404(facility_id, room_id)
        return show(request, session, facility, room, form=room_fields(room, facility), errors={})

    def save(request: Request, facility_id: str, room_id: str | None,
             form: dict[str, str]) -> Response:  # fmt: skip
        session = site.require(request, "operator")
        site.check_csrf(session, form.get("csrf", ""))
        facility = facility_or_404(facility_id)
        current = room_or_404(facility_id, room_id) if room_id else None
        new, errors = _room_from_form(s, facility_id, current, form, site.now())
        if errors or new is None:
            return show(request, session, facility, current, form=form, errors=errors)
        try:
            s.places.put_room(new, actor(session))
        except (ConflictError, NotFoundError) as exc:
            errors = {"": ("Not valid: {detail}", {"detail": str(exc)})}
            return show(request, session, facility, current, form=form, errors=errors)
        return RedirectResponse(f"/facilities/{facility_id}/rooms", status_code=303)

    @app.post("/facilities/{facility_id}/rooms/new", include_in_schema=False)
    async def create_room(request: Request, facility_id: str) -> Response:
        form = await _form(request)
        result: Response = await run_in_threadpool(save, request, facility_id, None, form)
        return result

    @app.post("/facilities/{facility_id}/rooms/{room_id}", include_in_schema=False)
    async def edit_room(request: Request, facility_id: str, room_id: str) -> Response:
        form = await _form(request)
        result: Response = await run_in_threadpool(save, request, facility_id, room_id, form)
        return result


def _room_from_form(
    s: StaffServices, facility_id: str, current: Room | None, form: Mapping[str, str],
    now: datetime,
) -> tuple[Room | None, Errors]:  # fmt: skip
    """The room the form describes (``current``: the room edited, none: a new
    one), or the errors per field."""
    room_id = current.id if current else None
    errors: Errors = {}
    hours = None
    if form.get("own_hours"):
        hours, errors = parse_hours(form)
    new_id = room_id or form.get("room_id", "").strip()
    rules: dict[str, str | None] = {k: form.get(k, "").strip() for k in RULE_FIELDS}
    for name in OPTIONAL_RULES:
        rules[name] = rules[name] or None
    values = {"id": new_id, "facility_id": facility_id,
              "door_id": form.get("door_id", "").strip(), "name": form.get("name", "").strip(),
              "rules": rules, "fee_per_slot_yen": form.get("fee_per_slot_yen", "").strip(),
              "opening_hours": hours}  # fmt: skip
    new = None
    try:
        new = Room.model_validate(values)
    except ValidationError as exc:
        errors = {**field_errors(exc), **errors}
    errors = {("room_id" if k == "id" else k): v for k, v in errors.items()}
    if current is None and new_id and "room_id" not in errors and _exists(s, new_id):
        errors["room_id"] = "A room with this id exists already.", {}
    if current is not None and new is not None and new.door_id != current.door_id:
        upcoming = staff_read.upcoming_bookings(s.bookings.db, current.id, now)
        if upcoming:
            errors["door_id"] = (
                "{count} bookings that have not ended open door {door}: move or cancel "
                "them before changing the door id.", {"count": upcoming,
                                                      "door": current.door_id})  # fmt: skip
    return (None if errors else new), errors


def _exists(s: StaffServices, room_id: str) -> bool:
    try:
        s.places.room(room_id)
    except NotFoundError:
        return False
    return True
