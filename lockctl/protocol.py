"""The socket API's wire format: one JSON object per line, UTF-8, both ways.

Requests (``id`` is optional and echoed back in the reply)::

    {"op": "unlock", "door": "room-a", "seconds": 5, "reason": "check-in", "ref": "r-42"}
    {"op": "lock", "door": "room-a"}
    {"op": "status"}
    {"op": "subscribe"}
    {"op": "mock", "door": "room-a", "input": "contact", "state": "open"}   # mock pins only
    {"op": "signal", "door": "room-a", "pattern": "granted"}  # buzzer/LED: granted|denied|error

Replies: ``{"ok": true, ...}`` or ``{"ok": false, "error": {"code", "message"}}``.
After ``subscribe`` the connection also receives ``{"event": ...}`` lines.

Parsing is pure: :func:`parse_request` turns one line into a request object
or raises :class:`~lockctl.errors.RequestError`; the daemon then answers with
an error reply and keeps the connection.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from foundation.privacy import check_event_data
from lockctl.errors import RequestError
from lockctl.machine import REQUEST_REASONS, Reason
from lockctl.signals import PATTERNS
from sync.errors import PersonalDataError

MAX_REQUEST_BYTES = 4096
# Longer than any door is ever meant to stay unlocked: such a number is a
# mistake (milliseconds for seconds?), refused rather than capped.
MAX_REQUEST_SECONDS = 86400.0
REF_PATTERN = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
MOCK_INPUTS = {
    "contact": ("open", "closed"),
    "exit_button": ("pressed", "released"),
    "relay": ("high", "low"),
}


@dataclass(frozen=True, slots=True)
class Unlock:
    door: str
    seconds: float | None
    reason: Reason
    ref: str | None


@dataclass(frozen=True, slots=True)
class Lock:
    door: str


@dataclass(frozen=True, slots=True)
class Status:
    pass


@dataclass(frozen=True, slots=True)
class Subscribe:
    pass


@dataclass(frozen=True, slots=True)
class MockDrive:
    door: str
    input: str
    state: str


@dataclass(frozen=True, slots=True)
class Signal:
    door: str
    pattern: str


Request = Unlock | Lock | Status | Subscribe | MockDrive | Signal


def parse_request(line: bytes) -> tuple[Any, Request]:
    """One request line -> (its ``id`` or None, the request)."""
    if len(line) > MAX_REQUEST_BYTES:
        raise RequestError("too_large", f"request longer than {MAX_REQUEST_BYTES} bytes")
    try:
        body = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise RequestError("bad_json", f"not a JSON object: {exc}") from None
    if not isinstance(body, dict):
        raise RequestError("bad_json", "a request must be a JSON object")
    if _has_lone_surrogate(body):
        raise RequestError(
            "bad_json", "text must be valid Unicode (an unpaired \\uD800-\\uDFFF escape)"
        )
    req_id = body.get("id")
    if isinstance(req_id, bool) or not isinstance(req_id, str | int | None):
        raise RequestError("bad_request", "id must be a string or an integer")
    try:
        return req_id, _parse_body(body)
    except RequestError as exc:
        exc.req_id = req_id  # so the error reply still names the request
        raise


def _has_lone_surrogate(body: dict[str, Any]) -> bool:
    # A JSON escape such as "\ud800" decodes to a lone surrogate, which no
    # UTF-8 reply (or log line) can carry: refused here, once, for every field.
    try:
        json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return True
    return False


def _parse_body(body: dict[str, Any]) -> Request:
    op = body.get("op")
    match op:
        case "unlock":
            return _unlock(body)
        case "lock":
            _only(body, {"door"})
            return Lock(_door(body))
        case "status":
            _only(body, set())
            return Status()
        case "subscribe":
            _only(body, set())
            return Subscribe()
        case "mock":
            return _mock(body)
        case "signal":
            _only(body, {"door", "pattern"})
            pattern = body.get("pattern")
            if not isinstance(pattern, str) or pattern not in PATTERNS:
                raise RequestError("bad_request", f"pattern must be one of {', '.join(PATTERNS)}")
            return Signal(_door(body), pattern)
    raise RequestError(
        "unknown_op", f"unknown op {op!r}; expected unlock, lock, status, subscribe or signal"
    )


def _only(body: dict[str, Any], allowed: set[str]) -> None:
    extra = set(body) - allowed - {"op", "id"}
    if extra:
        raise RequestError("bad_request", f"unknown field(s): {', '.join(sorted(extra))}")


def _door(body: dict[str, Any]) -> str:
    door = body.get("door")
    if not isinstance(door, str) or not door:
        raise RequestError("bad_request", "door must be a door id (text)")
    return door


def _unlock(body: dict[str, Any]) -> Unlock:
    _only(body, {"door", "seconds", "reason", "ref"})
    door = _door(body)
    seconds = body.get("seconds")
    if seconds is not None:
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise RequestError("bad_seconds", "seconds must be a number")
        # Compared as given (math.isfinite would overflow on a huge integer).
        if (isinstance(seconds, float) and not math.isfinite(seconds)) or seconds <= 0:
            raise RequestError("bad_seconds", f"seconds must be more than 0, not {seconds}")
        if seconds > MAX_REQUEST_SECONDS:
            raise RequestError(
                "bad_seconds",
                f"seconds={seconds} is not a door opening time (more than a day); nothing unlocked",
            )
        seconds = float(seconds)
    reason = body.get("reason", Reason.REMOTE.value)
    if not isinstance(reason, str) or reason not in {r.value for r in REQUEST_REASONS}:
        allowed = ", ".join(sorted(r.value for r in REQUEST_REASONS))
        raise RequestError("bad_reason", f"reason must be one of {allowed}, not {reason!r}")
    ref = body.get("ref")
    if ref is not None:
        if not isinstance(ref, str) or not REF_PATTERN.match(ref):
            raise RequestError(
                "bad_ref", "ref must be an opaque reference: 1-128 of A-Z a-z 0-9 . _ : @ / + = -"
            )
        try:
            check_event_data({"ref": ref})
        except PersonalDataError as exc:
            raise RequestError("bad_ref", f"ref refused: {exc.reason}") from None
    return Unlock(door, seconds, Reason(reason), ref)


def _mock(body: dict[str, Any]) -> MockDrive:
    _only(body, {"door", "input", "state"})
    door = _door(body)
    name, state = body.get("input"), body.get("state")
    if not isinstance(name, str) or name not in MOCK_INPUTS:
        raise RequestError("bad_request", f"input must be one of {', '.join(MOCK_INPUTS)}")
    if not isinstance(state, str) or state not in MOCK_INPUTS[name]:
        raise RequestError(
            "bad_request", f"state of {name} must be one of {', '.join(MOCK_INPUTS[name])}"
        )
    return MockDrive(door, name, state)


def encode(message: dict[str, Any]) -> bytes:
    """One message as a JSON line (always encodable: a lone surrogate becomes
    its JSON escape rather than an exception that would drop the connection)."""
    text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8", "backslashreplace") + b"\n"


def error_reply(req_id: Any, code: str, message: str) -> dict[str, Any]:
    reply: dict[str, Any] = {"ok": False, "error": {"code": code, "message": message}}
    if req_id is not None:
        reply["id"] = req_id
    return reply


def ok_reply(req_id: Any, **fields: Any) -> dict[str, Any]:
    reply: dict[str, Any] = {"ok": True, **fields}
    if req_id is not None:
        reply["id"] = req_id
    return reply
