"""The audit log's HTTP side, one ASGI middleware on central's app
(:class:`AuditRequests`):

* every request's client address (behind trusted proxies, as
  :func:`central.websec.client_address` computes it) becomes the ``source``
  of whatever the request records (:data:`central.audit.log.SOURCE`) --
  except the residents' booking site, whose visitors' addresses are personal
  data and are not recorded;
* every ``/api/`` write (any method but GET, HEAD, OPTIONS) is recorded as
  ``api.write`` with the token as actor and the answer as outcome, and every
  ``/api/`` request refused for its token (401, 403) as ``api.read`` or
  ``api.write`` with the address -- never the token itself. The route's
  dependency names the token (:func:`name_caller`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from central.audit.log import SOURCE, Outcome, record_now
from central.db.engine import Database
from central.errors import DatabaseError
from central.websec import Network, client_address

log = logging.getLogger(__name__)

ACTOR_KEY = "audit_actor"
READS = frozenset({"GET", "HEAD", "OPTIONS"})
UNRECORDED_SOURCE = ("/booking",)  # residents' addresses are theirs


def name_caller(request: Request, actor: str) -> None:
    """Tell the middleware who the caller is (``token:<id>``), also when the
    request is then refused for its role."""
    request.state.audit_actor = actor


def route_of(scope: Scope) -> dict[str, str]:
    """The matched route's template (``/api/bookings/{booking_id}/cancel``):
    the path in ``subject`` is cut at its column's width."""
    route = getattr(scope.get("route"), "path", None)
    return {"route": route} if isinstance(route, str) else {}


def outcome_of(status: int) -> tuple[Outcome, str]:
    if status < 400:
        return Outcome.OK, ""
    return (Outcome.FAILED if status >= 500 else Outcome.REFUSED), f"http_{status}"


class AuditRequests:
    def __init__(self, app: ASGIApp, *, db: Database, proxies: Sequence[Network] = ()) -> None:
        self.app, self.db, self.proxies = app, db, tuple(proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        address = "" if path.startswith(UNRECORDED_SOURCE) else client_address(
            Request(scope), self.proxies)  # fmt: skip
        token = SOURCE.set(address)
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            SOURCE.reset(token)
            if path.startswith("/api/"):
                await self._record(scope, path, status, address)

    async def _record(self, scope: Scope, path: str, status: int, address: str) -> None:
        method: str = scope["method"]
        write = method not in READS
        if not write and status not in (401, 403):
            return
        actor = str(scope.get("state", {}).get(ACTOR_KEY) or "anonymous")
        outcome, reason = outcome_of(status)
        try:
            await run_in_threadpool(
                record_now, self.db, actor, "api.write" if write else "api.read", path,
                source=address, outcome=outcome, reason=reason,
                detail={"method": method, "status": status, **route_of(scope)},
            )  # fmt: skip
        except DatabaseError as exc:  # the answer is sent; say loudly what is missing
            log.error("audit entry not written", extra={"path": path, "error": str(exc)})
