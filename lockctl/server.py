"""The unix-socket server: JSON lines in, JSON lines out, many clients at once.

Each connection reads lines of at most ``MAX_REQUEST_BYTES``; a longer line
gets a ``too_large`` error reply and is skipped up to its newline. Any bad
request gets an error reply and the connection stays open; an unexpected
exception in a handler is logged and answered with ``internal`` (the control
loop is not affected). At most ``MAX_CONNECTIONS`` clients at once: one
more gets a ``busy`` error reply and is closed, so a client that opens
connections without end cannot run the daemon out of file descriptors. The
socket is created mode 0660, owned by ``lock.socket_group`` when set; its
folder then is 0750 in that group.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import socket
from pathlib import Path
from typing import Any

from lockctl.controller import Controller, Queue
from lockctl.errors import LockctlError, RequestError
from lockctl.protocol import (
    MAX_REQUEST_BYTES,
    Lock,
    MockDrive,
    Signal,
    Status,
    Subscribe,
    Unlock,
    encode,
    error_reply,
    ok_reply,
    parse_request,
)

log = logging.getLogger(__name__)

READ_CHUNK = 65536
# Far above what a device uses (the touchscreen, the door terminal, a
# subscriber or two, the doctor), far below the default 1024 descriptors.
MAX_CONNECTIONS = 64


def socket_gid(group: str) -> int | None:
    """The gid of ``lock.socket_group`` (None when empty); a clear error if unknown."""
    if not group:
        return None
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise LockctlError(
            f"lock.socket_group {group!r} does not exist: create it (groupadd) or fix the config"
        ) from None


def clear_stale_socket(path: Path) -> None:
    """Remove a socket left by a killed daemon; refuse if a daemon answers on it."""
    if not path.exists() and not path.is_symlink():
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()
            return
    raise LockctlError(f"another lockctl is already serving on {path}; stop it first")


def prepare_socket_folder(folder: Path, gid: int | None) -> None:
    """Make the socket's folder; with a socket group, lockctl's own folder
    becomes mode 0750 in that group, so only its members can even reach the
    socket (on a device: /run/lockctl, the unit's RuntimeDirectory, and the
    group of the kiosk user alone). A folder lockctl does not own is left as it is."""
    folder.mkdir(parents=True, exist_ok=True)
    if gid is None:
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if os.fstat(fd).st_uid != os.geteuid():
            log.warning(
                "lock socket folder is not lockctl's own: mode left", extra={"folder": str(folder)}
            )
            return
        os.fchown(fd, -1, gid)
        os.fchmod(fd, 0o750)
    finally:
        os.close(fd)


async def open_server(path: Path, gid: int | None, controller: Controller) -> asyncio.Server:
    prepare_socket_folder(path.parent, gid)
    clear_stale_socket(path)
    # Created with the process umask (0755 at most: only the owner may
    # connect), then opened to the group.
    server = await asyncio.start_unix_server(Admission(controller).serve, path=str(path))
    path.chmod(0o660)
    if gid is not None:
        os.chown(path, -1, gid)
    return server


class Admission:
    """Counts the open connections; refuses one over ``MAX_CONNECTIONS``."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.open = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.open >= MAX_CONNECTIONS:
            log.warning("connection refused: too many clients", extra={"open": self.open})
            message = f"more than {MAX_CONNECTIONS} connections open; close one and retry"
            with contextlib.suppress(Exception):
                writer.write(encode(error_reply(None, "busy", message)))
                await asyncio.wait_for(writer.drain(), 1)
            writer.close()
            return
        self.open += 1
        try:
            await Session(self.controller, reader, writer).run()
        finally:
            self.open -= 1


class Session:
    """One client connection."""

    def __init__(
        self, controller: Controller, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.controller = controller
        self.reader = reader
        self.writer = writer
        self.queue: Queue | None = None
        self.forwarder: asyncio.Task[None] | None = None

    async def run(self) -> None:
        try:
            async for line in self._lines():
                self._send(self._handle(line))
                await self.writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._close()

    async def _lines(self) -> Any:
        buffer = b""
        discarding = False
        while True:
            chunk = await self.reader.read(READ_CHUNK)
            if not chunk:
                return
            buffer += chunk
            while True:
                end = buffer.find(b"\n")
                if end < 0:
                    break
                line, buffer = buffer[:end], buffer[end + 1 :]
                if discarding:
                    discarding = False
                elif line.strip():
                    yield line
            if len(buffer) > MAX_REQUEST_BYTES:
                if not discarding:
                    yield buffer  # parse_request answers too_large
                discarding, buffer = True, b""

    def _handle(self, line: bytes) -> dict[str, Any]:
        req_id = None
        try:
            req_id, request = parse_request(line)
            return ok_reply(req_id, **self._dispatch(request))
        except RequestError as exc:
            log.warning(
                "request refused",
                extra={"code": exc.code, "error": exc.message, "bytes": len(line)},
            )
            return error_reply(exc.req_id if req_id is None else req_id, exc.code, exc.message)
        except Exception:
            log.exception("request failed")
            return error_reply(req_id, "internal", "internal error; see the lockctl log")

    def _dispatch(self, request: Any) -> dict[str, Any]:
        match request:
            case Unlock():
                return self.controller.unlock(request)
            case Lock():
                return self.controller.lock(request)
            case Status():
                return self.controller.status()
            case Subscribe():
                return self._subscribe()
            case MockDrive():
                return self.controller.mock_drive(request)
            case Signal():
                return self.controller.signal(request)
        raise RequestError("unknown_op", f"unsupported request {request!r}")

    def _subscribe(self) -> dict[str, Any]:
        if self.queue is None:
            self.queue = self.controller.subscribe(self.writer.close)
            self.forwarder = asyncio.get_running_loop().create_task(self._forward(self.queue))
        return {"subscribed": True, "state": self.controller.status()["doors"]}

    async def _forward(self, queue: Queue) -> None:
        try:
            while True:
                self._send(await queue.get())
                await self.writer.drain()
        except (ConnectionError, OSError):
            self.writer.close()

    def _send(self, message: dict[str, Any]) -> None:
        if not self.writer.is_closing():
            self.writer.write(encode(message))

    def _close(self) -> None:
        if self.queue is not None:
            self.controller.unsubscribe(self.queue)
        if self.forwarder is not None:
            self.forwarder.cancel()
        with contextlib.suppress(Exception):
            self.writer.close()
