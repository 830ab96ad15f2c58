"""Staff calls on the dashboard: a server-sent event stream every signed-in
page listens to (``base.html`` shows a banner and plays a tone), and the
"on the way" and "done" buttons.

The stream polls the database (the ingest worker that opens a call is
another process) every ``poll_seconds``, one query for all open pages
(:class:`SharedRead`), and sends the list of live calls whenever it
changes, so a call is on screen well within a second of being stored. A
stream ends after ``max_seconds``; the browser's EventSource reconnects by
itself (``retry``), which also bounds a server shutdown.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import FastAPI, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from central.audit import Outcome, record_now
from central.ops.staffcalls import StaffCalls

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 15.0


def calls_message(calls: list[dict[str, Any]]) -> dict[str, Any]:
    """What the stream sends: the live calls, oldest first (no personal data)."""
    return {
        "calls": [
            {
                "id": int(c["pk"]),
                "device": c["device"],
                "detail": c["detail"],
                "state": c["state"],
                "opened_at": c["opened_at"].isoformat(timespec="seconds"),
                "acknowledged_by": c["acknowledged_by"] or "",
            }
            for c in calls
        ]
    }


class SharedRead:
    """``read`` at most once per ``seconds`` however many streams ask: every
    open dashboard page is served from one query, not one each."""

    def __init__(self, read: Callable[[], list[dict[str, Any]]], seconds: float) -> None:
        self._read = read
        self.seconds = seconds
        self._lock = threading.Lock()
        self._value: list[dict[str, Any]] = []
        self._at: float | None = None

    def __call__(self) -> list[dict[str, Any]]:
        with self._lock:
            now = time.monotonic()
            if self._at is None or now - self._at >= self.seconds:
                self._value, self._at = self._read(), now
            return self._value


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def call_stream(
    request: Request, read: Callable[[], list[dict[str, Any]]],
    poll_seconds: float, max_seconds: float,
) -> AsyncIterator[str]:  # fmt: skip
    yield "retry: 1000\n\n"
    started = last_sent = time.monotonic()
    previous = ""
    while time.monotonic() - started < max_seconds and not await request.is_disconnected():
        message = sse("staffcalls", calls_message(await run_in_threadpool(read)))
        if message != previous:
            yield message
            previous, last_sent = message, time.monotonic()
        elif time.monotonic() - last_sent >= KEEPALIVE_SECONDS:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        await asyncio.sleep(poll_seconds)


def _audit(dash: Any, username: str, action: str, alert_id: int, done: bool) -> None:
    """A staff call answered, or refused: not live (any more)."""
    record_now(dash.db, f"staff:{username}", action, f"alert:{alert_id}",
               outcome=Outcome.OK if done else Outcome.REFUSED,
               reason="" if done else "not_live")  # fmt: skip


def add_live_routes(
    app: FastAPI, dash: Any, changed: Callable[[], None],
    poll_seconds: float = 0.25, max_seconds: float = 300.0,
) -> None:  # fmt: skip
    """``dash`` is the :class:`~central.ops.dashboard.core.Dashboard` (its
    sign-in, CSRF check and clock); ``changed`` wakes the relay that tells
    the device."""
    calls = StaffCalls(dash.db)
    live = SharedRead(calls.live, poll_seconds)

    @app.get("/staffcalls/stream", include_in_schema=False)
    def stream(request: Request) -> Response:
        dash.require(request)
        return StreamingResponse(
            call_stream(request, live, poll_seconds, max_seconds),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @app.post("/staffcalls/{alert_id}/ack", include_in_schema=False)
    def on_the_way(request: Request, alert_id: int, csrf: Annotated[str, Form()]) -> Response:
        session = dash.require(request, "operator")
        dash.check_csrf(session, csrf)
        done = calls.acknowledge(alert_id, session.username, dash.now())
        _audit(dash, session.username, "staffcall.acknowledge", alert_id, done)
        if done:
            changed()
            log.info("staff call acknowledged", extra={"alert": alert_id,
                                                       "user": session.username})  # fmt: skip
        return RedirectResponse("/alerts", status_code=303)

    @app.post("/staffcalls/{alert_id}/done", include_in_schema=False)
    def done(request: Request, alert_id: int, csrf: Annotated[str, Form()]) -> Response:
        session = dash.require(request, "operator")
        dash.check_csrf(session, csrf)
        done = calls.finish(alert_id, session.username, dash.now())
        _audit(dash, session.username, "staffcall.done", alert_id, done)
        if done:
            changed()
            log.info("staff call done", extra={"alert": alert_id, "user": session.username})
        return RedirectResponse("/alerts", status_code=303)
