"""Remote commands on the dashboard (operator role): the device page's
Commands panel, the facility command page, the confirmation page, the live
command list (server-sent events) and what commands collected.

Every command goes through a confirmation page that says what will happen
(:func:`describe`); ``door.unlock`` and ``door.lockdown`` also need a FRESH
second factor there: a passkey assertion whose challenge was made for this
confirmation (purpose ``command``: it can never sign anyone in) or an
authenticator code (counted like a sign-in, its step used up). The factor
of the sign-in does not count. A wrong factor is refused and audited
(``command.second_factor``, outcome refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from central.audit import Outcome, record_now
from central.commands import CommandRefused, CommandService
from central.ops.dashboard.live import sse
from central.ops.passkeys import PasskeyError
from central.ops.staff import StaffError, StaffSession, StaffStore
from central.websec import client_address
from contracts.commands import SECOND_FACTOR

if TYPE_CHECKING:
    from central.ops.dashboard.core import Dashboard

log = logging.getLogger(__name__)

# What the panel offers (the facility page: lockdown, release, relock all).
DEVICE_COMMANDS = ("door.unlock", "door.relock", "door.lockdown", "door.release",
                   "service.restart", "device.reboot", "config.reload",
                   "diagnostics.collect", "screen.capture")  # fmt: skip
FACILITY_COMMANDS = ("door.lockdown", "door.release", "door.relock")
FORM_ARGS = ("door", "seconds", "reason", "service")


def form_args(name: str, fields: dict[str, str]) -> dict[str, Any]:
    """The command's arguments from the panel's form fields (only the ones it takes)."""
    wanted = {"door.unlock": ("door", "seconds", "reason"), "door.relock": ("door",),
              "door.lockdown": ("door", "reason"), "door.release": ("door",),
              "service.restart": ("service",)}.get(name, ())  # fmt: skip
    args: dict[str, Any] = {k: fields[k].strip() for k in wanted if fields.get(k, "").strip()}
    if "seconds" in args:
        with contextlib.suppress(ValueError):  # else the contract's validation names it
            args["seconds"] = float(args["seconds"])
    return args


def describe(_: Callable[[str], str], name: str, args: dict[str, Any], target: str) -> str:
    """The sentence the confirmation page restates."""
    door = args.get("door", "")
    door = _("every door") if door == "*" else _("door {door}").format(door=door)
    texts = {
        "door.unlock": _("Unlock {door} of {target} for {seconds} seconds."),
        "door.relock": _("Lock {door} of {target} now."),
        "door.lockdown": _("Lock down {door} of {target}: every check-in is refused "
                           "until it is released."),
        "door.release": _("Release the lockdown of {door} of {target}."),
        "service.restart": _("Restart the {service} service of {target}."),
        "device.reboot": _("Reboot {target}."),
        "config.reload": _("Reload the configuration of {target}."),
        "diagnostics.collect": _("Collect diagnostics from {target} (logs, versions, health)."),
        "screen.capture": _("Take a screenshot of {target} (only while it shows nobody's data)."),
    }  # fmt: skip
    seconds = args.get("seconds", "")
    values = {"door": door, "target": target, "service": args.get("service", ""),
              "seconds": f"{seconds:g}" if isinstance(seconds, float) else seconds}  # fmt: skip
    text = texts.get(name)
    return text.format(**values) if text is not None else name


def command_row(row: dict[str, Any]) -> dict[str, Any]:
    """A command as the live list shows it (no reason: it stays on the server)."""
    return {"id": row["id"], "device": row["device"], "name": row["name"],
            "door": row["args"].get("door", ""), "state": row["state"], "code": row["code"],
            "message": row["message"], "issued_by": row["issued_by"],
            "issued_at": row["issued_at"].isoformat(timespec="seconds"),
            "file": row.get("file_type") or ""}  # fmt: skip


async def command_stream(request: Request, read: Callable[[], list[dict[str, Any]]],
                         poll: float, max_seconds: float) -> AsyncIterator[str]:  # fmt: skip
    yield "retry: 1000\n\n"
    started, previous = time.monotonic(), ""
    while time.monotonic() - started < max_seconds and not await request.is_disconnected():
        rows = await run_in_threadpool(read)
        message = sse("commands", {"commands": [command_row(r) for r in rows]})
        if message != previous:
            yield message
            previous = message
        await asyncio.sleep(poll)


@dataclass(frozen=True)
class CommandForm:
    scope: str  # device | facility
    target: str  # the device or facility id
    name: str
    args: dict[str, Any]
    fields: dict[str, str]  # as posted (the second factor's fields)


class CommandPages:
    def __init__(self, dash: Dashboard, service: CommandService) -> None:
        self.dash, self.service = dash, service

    def source(self, request: Request) -> str:
        return client_address(request, self.dash.proxies)

    def confirm_page(self, request: Request, session: StaffSession, *, scope: str, target: str,
                     name: str, args: dict[str, Any], error: str = "",
                     code: int = 200) -> Response:  # fmt: skip
        dash, _ = self.dash, self.dash.gettext(request)
        fresh = name in SECOND_FACTOR
        options, token = "", ""
        has_passkey = bool(dash.passkeys and dash.passkeys.usable_count(session.username))
        if fresh and dash.passkeys is not None and has_passkey:
            token, options = dash.passkeys.authentication_options(session.username, dash.now(),
                                                                  purpose="command")  # fmt: skip
        return dash.page(request, "command_confirm.html", session, code, scope=scope,
                         target=target, name=name, args=args, fields=_fields(args),
                         sentence=describe(_, name, args, target), fresh=fresh,
                         options=options, factor_token=token, has_passkey=has_passkey,
                         has_totp=StaffStore(dash.db).has_totp(session.username),
                         error=error)  # fmt: skip

    async def read_form(self, request: Request) -> tuple[StaffSession, CommandForm]:
        """The signed-in operator and the posted command form (CSRF checked)."""
        session = self.dash.require(request, "operator")
        fields = {k: str(v) for k, v in (await request.form()).items()}
        self.dash.check_csrf(session, fields.get("csrf", ""))
        name, scope = fields.get("name", ""), fields.get("scope", "device")
        if name not in (FACILITY_COMMANDS if scope == "facility" else DEVICE_COMMANDS):
            raise HTTPException(404, "no such command here")
        return session, CommandForm(scope, fields.get("target", ""),
                                    name, form_args(name, fields), fields)  # fmt: skip

    def second_factor(self, session: StaffSession, form: dict[str, str]) -> str:
        """'' when a fresh factor was proved now, else the reason refused."""
        dash, now = self.dash, self.dash.now()
        try:
            if form.get("credential") and dash.passkeys is not None:
                who = dash.passkeys.authenticate(form.get("factor_token", ""),
                                                 form["credential"][:20000], now,
                                                 purpose="command")  # fmt: skip
                if who != session.username:
                    return "other_account"
                return ""
            if form.get("code", "").strip():
                StaffStore(dash.db).confirm_totp(session.username, form["code"].strip(), now)
                return ""
        except (PasskeyError, StaffError) as exc:
            return exc.reason or "refused"
        return "missing"


def _fields(args: dict[str, Any]) -> dict[str, str]:
    return {k: (f"{v:g}" if isinstance(v, float) else str(v)) for k, v in args.items()}


def add_command_pages(app: FastAPI, dash: Dashboard, service: CommandService,
                      poll_seconds: float = 0.5, max_seconds: float = 300.0) -> None:  # fmt: skip
    pages = CommandPages(dash, service)
    _issue_routes(app, pages)
    _read_routes(app, pages, poll_seconds, max_seconds)


def _issue_routes(app: FastAPI, pages: CommandPages) -> None:
    dash, service = pages.dash, pages.service

    def refused(request: Request, exc: CommandRefused) -> Response:
        _ = dash.gettext(request)
        return dash.page(request, "command_refused.html", dash.session(request), exc.status,
                         code_name=exc.code, message=exc.message)  # fmt: skip

    @app.post("/commands/confirm", response_class=HTMLResponse, include_in_schema=False)
    async def confirm(request: Request) -> Response:
        session, form = await pages.read_form(request)
        scope, target, name, args = form.scope, form.target, form.name, form.args
        if scope == "facility":
            args["door"] = "*"
        else:
            try:
                await run_in_threadpool(
                    lambda: service.check(target, name, args, issuer=f"staff:{session.username}",
                                          source=pages.source(request)))  # fmt: skip
            except CommandRefused as exc:
                return refused(request, exc)
        return pages.confirm_page(request, session, scope=scope, target=target, name=name,
                                  args=args)  # fmt: skip

    @app.post("/commands/issue", include_in_schema=False)
    async def issue(request: Request) -> Response:
        session, form = await pages.read_form(request)
        scope, target, name, args = form.scope, form.target, form.name, form.args
        issuer, source = f"staff:{session.username}", pages.source(request)
        if name in SECOND_FACTOR:
            why = await run_in_threadpool(pages.second_factor, session, form.fields)
            if why:
                log.warning("command second factor refused", extra={
                    "user": session.username, "command": name, "reason": why})  # fmt: skip
                record_now(dash.db, issuer, "command.second_factor", f"{scope}:{target}"[:80],
                           source=source, outcome=Outcome.REFUSED, reason=why,
                           detail={"command": name})  # fmt: skip
                _ = dash.gettext(request)
                shown = dict(args, door="*") if scope == "facility" else args
                return pages.confirm_page(
                    request,
                    session,
                    scope=scope,
                    target=target,
                    name=name,
                    args=shown,
                    error=_("The second factor was not accepted: try again."),
                    code=403,
                )
        try:
            if scope == "facility":
                await run_in_threadpool(lambda: service.issue_facility(
                    target, name, {k: v for k, v in args.items() if k != "door"},
                    issuer=issuer, source=source))  # fmt: skip
                return RedirectResponse(f"/facilities/{target}/commands", status_code=303)
            await run_in_threadpool(lambda: service.issue(target, name, args, issuer=issuer,
                                                          source=source))  # fmt: skip
        except CommandRefused as exc:
            return refused(request, exc)
        return RedirectResponse(f"/devices/{target}#commands", status_code=303)


def _read_routes(app: FastAPI, pages: CommandPages, poll: float, max_seconds: float) -> None:
    dash, service = pages.dash, pages.service

    @app.get("/facilities/{facility}/commands", response_class=HTMLResponse,
             include_in_schema=False)  # fmt: skip
    def facility_page(request: Request, facility: str) -> Response:
        session = dash.require(request, "operator")
        return dash.page(request, "facility_commands.html", session, facility=facility,
                         commands=service.listing(facility=facility, limit=100),
                         commands_on=service.configured)  # fmt: skip

    @app.get("/commands/stream", include_in_schema=False)
    def stream(request: Request, device: str = "", facility: str = "") -> Response:
        dash.require(request, "operator")

        def read() -> list[dict[str, Any]]:
            # As many as the page shows (the device page 20, the facility page 100).
            return service.listing(device=device, facility=facility, limit=100 if facility else 20)

        return StreamingResponse(command_stream(request, read, poll, max_seconds),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store",
                                          "X-Accel-Buffering": "no"})  # fmt: skip

    @app.get("/commands/{command_id}", response_class=HTMLResponse, include_in_schema=False)
    def command_page(request: Request, command_id: str) -> Response:
        session = dash.require(request, "operator")
        row = service.get(command_id[:64])
        if row is None:
            raise HTTPException(404, "no such command")
        diagnostics = ""
        found = service.file(row["id"]) if row.get("file_type") == "application/json" else None
        if found is not None:
            diagnostics = json.dumps(json.loads(found[1]), indent=2, ensure_ascii=False)
        _ = dash.gettext(request)
        detail = json.dumps(row["detail"], indent=2, ensure_ascii=False)
        return dash.page(request, "command.html", session, command=row,
                         sentence=describe(_, row["name"], row["args"], row["device"]),
                         diagnostics=diagnostics, detail=detail)  # fmt: skip

    @app.get("/commands/{command_id}/screenshot.png", include_in_schema=False)
    def screenshot(request: Request, command_id: str) -> Response:
        dash.require(request, "operator")
        found = service.file(command_id[:64])
        if found is None or found[0] != "image/png":
            raise HTTPException(404, "no screenshot")
        return Response(found[1], media_type="image/png",
                        headers={"Cache-Control": "no-store"})  # fmt: skip
