"""Client of the lock controller's socket (used by the kiosk and the CLI).

    with LockClient("/run/lockctl/lockctl.sock") as lock:
        reply = lock.unlock("room-a", seconds=5, reason="check-in", ref="r-42")
        reply["deadline_monotonic"]   # absolute relock time, time.monotonic() clock

Each call sends one JSON line and waits (up to ``timeout`` seconds) for the
reply with the same ``id``. Errors: :class:`~lockctl.errors.LockctlUnavailableError`
when the daemon cannot be reached, :class:`~lockctl.errors.RequestError` (with
the daemon's ``code``) when it refused the request, and
:class:`~lockctl.errors.LockctlProtocolError` for an answer that is not a reply.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lockctl.errors import LockctlProtocolError, LockctlUnavailableError, RequestError

MAX_LINE = 1 << 20


class LockClient:
    """One connection to the daemon; :meth:`close` it (or use ``with``)."""

    def __init__(self, path: str | os.PathLike[str], timeout: float = 5.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._file: Any = None
        self._ids = itertools.count(1)
        self._events: collections.deque[dict[str, Any]] = collections.deque()

    def __enter__(self) -> LockClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connect(self) -> None:
        if self._sock is not None:
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
        except OSError as exc:
            sock.close()
            raise LockctlUnavailableError(
                f"lock controller not reachable at {self.path} ({exc.strerror or exc});"
                " is `python -m lockctl serve` running, and may this user use its socket?"
            ) from None
        self._sock = sock
        self._file = sock.makefile("rb")

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one request; return the reply's fields (raises on an error reply)."""
        self._connect()
        assert self._sock is not None
        req_id = next(self._ids)
        line = json.dumps({"op": op, "id": req_id, **fields}).encode() + b"\n"
        try:
            self._sock.sendall(line)
            while True:
                message = self._read()
                if "event" in message:
                    self._events.append(message)
                    continue
                if message.get("id") != req_id:
                    continue
                return self._result(message)
        except (TimeoutError, OSError) as exc:
            self.close()
            raise LockctlUnavailableError(f"lock controller at {self.path}: {exc}") from None

    def _read(self) -> dict[str, Any]:
        raw = self._file.readline(MAX_LINE)
        if not raw:
            raise ConnectionResetError("connection closed by the lock controller")
        try:
            message = json.loads(raw)
        except ValueError as exc:
            raise LockctlProtocolError(f"not a JSON reply: {raw[:80]!r} ({exc})") from None
        if not isinstance(message, dict):
            raise LockctlProtocolError(f"not a JSON object: {raw[:80]!r}")
        return message

    @staticmethod
    def _result(message: dict[str, Any]) -> dict[str, Any]:
        if message.get("ok") is True:
            return message
        error = message.get("error") or {}
        raise RequestError(str(error.get("code", "error")), str(error.get("message", message)))

    def unlock(
        self,
        door: str,
        seconds: float | None = None,
        reason: str = "check-in",
        ref: str | None = None,
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {"door": door, "reason": reason}
        if seconds is not None:
            fields["seconds"] = seconds
        if ref is not None:
            fields["ref"] = ref
        return self.request("unlock", **fields)

    def lock(self, door: str) -> dict[str, Any]:
        return self.request("lock", door=door)

    def status(self) -> dict[str, Any]:
        return self.request("status")

    def watch(self) -> Iterator[dict[str, Any]]:
        """Subscribe now (not on the first ``next()``: no event after this call
        is missed, whichever thread reads), then iterate over every
        state-change message until the connection ends."""
        self.request("subscribe")
        self._sock_blocking()
        return self._stream()

    def _stream(self) -> Iterator[dict[str, Any]]:
        while True:
            while self._events:
                yield self._events.popleft()
            try:
                message = self._read()
            except (ConnectionError, OSError):
                return
            if "event" in message:
                yield message

    def _sock_blocking(self) -> None:
        if self._sock is not None:
            self._sock.settimeout(None)

    def close(self) -> None:
        if self._sock is not None:
            # Wakes a watch() blocked in another thread (it then sees the end).
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
