"""What a command collected, uploaded by its device: ``POST``
:data:`contracts.commands.ATTACHMENT_PATH` on the mutual-TLS device listener.

Accepted only from the command's own device (the verified certificate's CN,
:func:`central.mtls.client_cn`), for a command that collects something
(diagnostics, a screenshot), with that command's content type, within its
size limit, once. Diagnostics are JSON and pass the personal-data guard here
again before they are stored: a device bug must not put a resident's data in
central's database. Every refusal is a JSON ``{"error", "message"}`` with
its status, a log line and an audit entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from central.audit import Outcome, record_now
from central.commands.errors import CommandRefused
from central.commands.service import CommandService
from central.mtls import client_cn
from contracts.commands import ATTACHMENT_PATH, ATTACHMENT_TYPES, MAX_ATTACHMENT_BYTES
from foundation.errors import PersonalDataError
from foundation.privacy import check_event_data

log = logging.getLogger(__name__)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CLOSED = frozenset({"expired", "refused"})


def check_upload(command: dict[str, Any] | None, device: str, content_type: str,
                 size: int | None) -> str:  # fmt: skip
    """The expected content type, or :class:`CommandRefused` (before the body is read)."""
    if command is None:
        raise CommandRefused("unknown_command", "no such command")
    if command["device"] != device:
        raise CommandRefused("wrong_device", "this command is for another device")
    expected = ATTACHMENT_TYPES.get(command["name"])
    if expected is None or command["state"] in CLOSED:
        raise CommandRefused("no_attachment", f"{command['name']} ({command['state']}) "
                             "takes no upload")  # fmt: skip
    if content_type.split(";", maxsplit=1)[0].strip().lower() != expected:
        raise CommandRefused("wrong_type", f"{command['name']} uploads {expected}")
    limit = MAX_ATTACHMENT_BYTES[command["name"]]
    if size is not None and size > limit:
        raise CommandRefused("too_large", f"at most {limit} bytes")
    return expected


def check_content(name: str, body: bytes) -> None:
    """The body is what its type says; diagnostics carry no personal data."""
    if len(body) > MAX_ATTACHMENT_BYTES[name]:
        raise CommandRefused("too_large", f"at most {MAX_ATTACHMENT_BYTES[name]} bytes")
    if name == "screen.capture":
        if not body.startswith(PNG_MAGIC):
            raise CommandRefused("wrong_type", "not a PNG image")
        return
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise CommandRefused("wrong_type", "diagnostics are not JSON") from None
    if not isinstance(data, dict):
        raise CommandRefused("wrong_type", "diagnostics are a JSON object")
    try:
        check_event_data(data)
    except PersonalDataError as exc:
        raise CommandRefused("personal_data", f"refused at {exc.where}: {exc.reason}") from None


async def _read_capped(request: Request, limit: int) -> bytes:
    """The body, reading at most one byte past ``limit`` (a lying or missing
    Content-Length cannot make central hold more)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise CommandRefused("too_large", f"at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def mount_attachments(app: FastAPI, service: CommandService) -> None:
    """Serve the upload route on the device listener's app."""

    @app.post(ATTACHMENT_PATH, status_code=201, include_in_schema=False)
    async def upload(command_id: str, request: Request) -> JSONResponse:
        device = client_cn(request) or ""
        try:
            if not device:
                raise CommandRefused("wrong_device", "a device certificate is required")
            command = await run_in_threadpool(service.get, command_id[:64])
            length = request.headers.get("content-length")
            size = int(length) if length and length.isdigit() else None
            check_upload(command, device, request.headers.get("content-type", ""), size)
            assert command is not None  # check_upload refused None
            body = await _read_capped(request, MAX_ATTACHMENT_BYTES[command["name"]])
            check_content(command["name"], body)
            digest = hashlib.sha256(body).hexdigest()
            kind = ATTACHMENT_TYPES[command["name"]]
            if not await run_in_threadpool(service.store_file, command["id"], kind, body, digest):
                raise CommandRefused("already_uploaded", "this command's upload was received")
        except CommandRefused as exc:
            log.warning("command upload refused", extra={"device": device, "code": exc.code,
                                                         "command": command_id[:64]})  # fmt: skip
            await run_in_threadpool(_audit, service, device, command_id, Outcome.REFUSED,
                                    reason=exc.code, detail={})  # fmt: skip
            return JSONResponse({"error": exc.code, "message": exc.message}, exc.status)
        await run_in_threadpool(
            _audit,
            service,
            device,
            command_id,
            Outcome.OK,
            reason="",
            detail={"bytes": len(body), "sha256": digest},
        )
        log.info("command upload stored", extra={"device": device, "command": command_id,
                                                 "bytes": len(body)})  # fmt: skip
        return JSONResponse({"sha256": digest}, 201)


def _audit(service: CommandService, device: str, command_id: str, outcome: Outcome, *,
           reason: str, detail: dict[str, Any]) -> None:  # fmt: skip
    actor = f"device:{device}" if device else "anonymous"
    record_now(service.db, actor, "command.attachment", f"command:{command_id}"[:80],
               source=actor, outcome=outcome, reason=reason,
               detail={"command_id": command_id[:64], **detail})  # fmt: skip
