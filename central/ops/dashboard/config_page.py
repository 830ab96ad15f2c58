"""The dashboard's configuration push pages (``/config``): per facility and
per device, the desired settings as TOML (checked for syntax and the
allowlist here; the device validates the whole), the history of versions,
each device's desired and applied version and its last refusal, and "push
now" (a ``config.apply`` command through the service's issuer).

Anyone signed in may look (settings are timings and texts, no secret);
saving and pushing need the admin role (a setting such as
``policy.on_untrusted_clock`` decides who enters a building). Every save and
push, refused ones too, is an audit entry (:mod:`central.configpush`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from central.configpush import ConfigPushRefused, ConfigPushService
from central.db.tables import devices
from central.ops.staff import StaffSession
from central.websec import client_address
from contracts.configpush import settings_to_toml

if TYPE_CHECKING:
    from central.ops.dashboard.core import Dashboard

log = logging.getLogger(__name__)

MAX_TOML = 16 * 1024
SAVE_ROLE = "admin"


def add_config_pages(app: FastAPI, dash: Dashboard, service: ConfigPushService) -> None:
    """Mount ``/config``; ``service`` carries the issuer that sends commands."""

    @app.get("/config", response_class=HTMLResponse, include_in_schema=False)
    def config_overview(request: Request) -> Response:
        session = dash.require(request)
        with dash.db.read() as conn:
            found = conn.execute(select(devices.c.facility).distinct()).scalars()
            facilities = sorted(f for f in found if f)
        return dash.page(request, "config.html", session, mode="overview",
                         facilities=facilities, statuses=service.statuses())  # fmt: skip

    @app.get("/config/{scope}/{target}", response_class=HTMLResponse, include_in_schema=False)
    def config_target(request: Request, scope: str, target: str) -> Response:
        session = dash.require(request)
        return _target_page(dash, service, request, session, scope=scope, target=target)

    @app.post("/config/{scope}/{target}", include_in_schema=False)
    def config_save(
        request: Request, scope: str, target: str, *, settings: Annotated[str, Form()],
        csrf: Annotated[str, Form()], note: Annotated[str, Form()] = "",
    ) -> Response:  # fmt: skip
        session = dash.require(request, SAVE_ROLE)
        dash.check_csrf(session, csrf)
        _known_scope(scope)
        actor = f"staff:{session.username}"
        try:
            if len(settings) > MAX_TOML:
                raise ConfigPushRefused("bad_settings", f"at most {MAX_TOML} characters")
            version = service.save(scope, target, settings, actor=actor, now=dash.now(), note=note)
        except ConfigPushRefused as exc:
            log.warning("configuration save refused", extra={"target": target, "code": exc.code})
            return _target_page(dash, service, request, session, scope=scope, target=target,
                                code=422, error=exc.message, typed=settings,
                                note=note)  # fmt: skip
        return RedirectResponse(f"/config/{scope}/{target}?saved={version}", status_code=303)

    @app.post("/config/{scope}/{target}/push", include_in_schema=False)
    def config_push(request: Request, scope: str, target: str,
                    csrf: Annotated[str, Form()]) -> Response:  # fmt: skip
        session = dash.require(request, SAVE_ROLE)
        dash.check_csrf(session, csrf)
        _known_scope(scope)
        actor, source = f"staff:{session.username}", client_address(request, dash.proxies)
        if scope == "facility":
            done = service.push_facility(target, actor=actor, source=source, now=dash.now())
            refused = sorted(d for d, r in done.items() if r.startswith("refused"))
            if not done or refused:
                message = ", ".join(f"{d}: {done[d]}" for d in refused) or "no device"
                return _target_page(dash, service, request, session, scope=scope,
                                    target=target, code=409, error=message)  # fmt: skip
        else:
            try:
                service.push(target, actor=actor, source=source, now=dash.now())
            except ConfigPushRefused as exc:
                return _target_page(dash, service, request, session, scope=scope,
                                    target=target, code=409, error=exc.message)  # fmt: skip
        return RedirectResponse(f"/config/{scope}/{target}?pushed=1", status_code=303)


def _known_scope(scope: str) -> None:
    if scope not in ("facility", "device"):
        raise HTTPException(404, "no such page")


def _target_page(
    dash: Dashboard, service: ConfigPushService, request: Request, session: StaffSession, *,
    scope: str, target: str, code: int = 200, error: str = "", typed: str | None = None,
    note: str = "",
) -> Response:  # fmt: skip
    _known_scope(scope)
    if scope == "facility":
        statuses = service.statuses(facility=target)
    else:
        statuses = service.statuses(device=target)
    if not statuses:
        raise HTTPException(404, f"no {scope} {target}")
    history = service.history(scope, target)
    latest = history[0].settings if history else {}
    context: dict[str, Any] = {
        "mode": scope, "target": target, "statuses": statuses, "history": history,
        "typed": settings_to_toml(latest) if typed is None else typed, "note": note,
        "error": error, "may_save": session.may(SAVE_ROLE),
        "saved": request.query_params.get("saved", ""),
        "pushed": request.query_params.get("pushed", ""),
        "toml": settings_to_toml,
    }  # fmt: skip
    if scope == "device":
        desired = service.desired(target)
        context["desired"] = desired
        context["facility"] = statuses[0].facility
    return dash.page(request, "config.html", session, code, **context)
