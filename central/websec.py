"""What the ops dashboard and the residents' booking site share to be safe on
the web (one implementation for both; they are mounted on the same app):

* :class:`WebOptions`: the public address (``https://`` means every cookie is
  ``Secure``, even when TLS ends at a proxy in front and the request reaching
  us is plain http), the proxies whose ``X-Forwarded-For`` is believed, and
  how the API's metadata (``/metrics``, ``/docs``, ``/openapi.json``) is
  reached.
* :func:`client_address`: who is asking, honouring ``X-Forwarded-For`` only
  from a configured trusted proxy (anyone else could write any address there).
* :class:`AttemptLimiter`: sign-in attempts per client address, counted in the
  database with one atomic upsert, so every API worker shares the limit and
  parallel requests cannot slip past it.
* :class:`SecurityHeaders`: the ASGI middleware that gives every answer its
  Content-Security-Policy (no inline script, no framing by another origin),
  ``Cache-Control: no-store`` (signed-in pages must not stay in a shared or
  browser cache) and the other protective headers.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import OperationalError
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from central.db.engine import Database, utc
from central.db.tables import sign_in_attempts

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class WebOptions:
    """How central's web side is reached (``[api]`` of docs/central.md)."""

    # The address people use (https://...); empty: the request's own scheme.
    public_url: str = ""
    # Addresses or networks of reverse proxies whose X-Forwarded-For is believed.
    trusted_proxies: tuple[str, ...] = ()
    # Sign-in attempts per client address per window (dashboard, booking site).
    attempts_per_address: int = 20
    attempts_window: timedelta = timedelta(minutes=5)
    # /metrics, /docs, /openapi.json need "Authorization: Bearer <token>" ...
    metadata_token: str | None = None
    # ... or are served only on this separate (host, port) listener.
    metadata_listener: tuple[str, int] | None = None

    @property
    def https(self) -> bool:
        return self.public_url.lower().startswith("https://")

    def networks(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxies)


DEFAULT_WEB = WebOptions()  # tests and tools: request scheme only, no proxies, no metadata


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """``10.0.0.1`` or ``10.0.0.0/8`` (and IPv6); ValueError names a bad entry."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def secure_cookies(request: Request, public_url: str) -> bool:
    """Cookies are Secure when the site's public address is https, whatever
    scheme the request arrived with (TLS often ends at a proxy in front)."""
    return request.url.scheme == "https" or public_url.lower().startswith("https://")


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_address(request: Request, trusted: Sequence[Network]) -> str:
    """The client's address: the connection's peer, or, when the peer is a
    trusted proxy, the right-most ``X-Forwarded-For`` hop that is not itself
    a trusted proxy (hops further left were written by the client)."""
    peer = request.client.host if request.client else ""

    def is_trusted(address: str) -> bool:
        ip = _ip(address)
        return ip is not None and any(ip in net for net in trusted)

    if not is_trusted(peer):
        return peer or "unknown"
    hops = [h.strip() for v in request.headers.getlist("x-forwarded-for") for h in v.split(",")]
    client = peer
    for hop in reversed([h for h in hops if h]):
        if _ip(hop) is None:
            break  # garbage: keep the last address a trusted proxy vouched for
        client = hop
        if not is_trusted(hop):
            break
    return client


class AttemptLimiter:
    """At most ``limit`` sign-in attempts per client address per fixed
    ``window``, counted in ``sign_in_attempts`` (shared by all workers).

    One ``INSERT ... ON CONFLICT DO UPDATE SET attempts = attempts + 1
    RETURNING attempts`` counts and reads in one statement, atomic on SQLite
    and PostgreSQL: parallel attempts each get their own count."""

    def __init__(
        self, db: Database, scope: str, limit: int = 20, window: timedelta = timedelta(minutes=5)
    ) -> None:
        self.db, self.scope, self.limit, self.window = db, scope, limit, window

    def _window_start(self, now: datetime) -> datetime:
        seconds = int(self.window.total_seconds())
        stamp = int(now.timestamp())
        return datetime.fromtimestamp(stamp - stamp % seconds, tz=now.tzinfo)

    def allow(self, address: str, now: datetime) -> bool:
        """Count this attempt; False when the address is past the limit."""
        start = utc(self._window_start(now))
        table = sign_in_attempts
        statement = (
            self.db.insert(table)
            .values(scope=self.scope, address=address[:64], window_start=start, attempts=1)
            .on_conflict_do_update(
                index_elements=[table.c.scope, table.c.address, table.c.window_start],
                set_={"attempts": table.c.attempts + 1},
            )
            .returning(table.c.attempts)
        )
        with self.db.write() as conn:
            count = int(conn.execute(statement).scalar_one())
        if count == 1:
            self._purge(start)
        return count <= self.limit

    def _purge(self, start: datetime) -> None:
        """Drop windows long past (when a new one opens; a lost race is harmless)."""
        try:
            with self.db.write() as conn:
                conn.execute(delete(sign_in_attempts).where(
                    sign_in_attempts.c.window_start < start - self.window))  # fmt: skip
        except OperationalError as exc:
            log.warning("sign-in attempt purge skipped", extra={"error": str(exc.orig)})


# script-src 'self': no inline script runs (an injected <script> does not);
# style attributes stay allowed for the bar widths of the use page.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
# The interactive API docs load their viewer from a CDN with an inline script;
# they are reached with the metadata token only, and still never framed.
DOCS_CSP = "frame-ancestors 'none'"
DOCS_PATHS = ("/docs", "/redoc")


class SecurityHeaders:
    """ASGI middleware: the security headers on every HTTP answer. Answers
    under ``cacheable`` (static files) may be cached; everything else is
    ``no-store`` unless it says otherwise."""

    def __init__(self, app: ASGIApp, *, https: bool = False, cacheable: Sequence[str] = ()) -> None:
        self.app, self.https, self.cacheable = app, https, tuple(cacheable)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._add(MutableHeaders(scope=message), path)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _add(self, headers: MutableHeaders, path: str) -> None:
        docs = path.startswith(DOCS_PATHS)
        headers.setdefault("Content-Security-Policy", DOCS_CSP if docs else CSP)
        headers.setdefault("X-Frame-Options", "DENY")  # browsers without frame-ancestors
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if not path.startswith(self.cacheable):
            headers.setdefault("Cache-Control", "no-store")
        if self.https:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")


def bearer_matches(request: Request, token: str) -> bool:
    """``Authorization: Bearer <token>`` with exactly this token."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


def describe(options: WebOptions) -> dict[str, Any]:
    """For the start-up log line (never the token)."""
    return {"public_url": options.public_url, "trusted_proxies": list(options.trusted_proxies),
            "metadata": "listener" if options.metadata_listener else
            "token" if options.metadata_token else "off"}  # fmt: skip
