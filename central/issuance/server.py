"""The issuance listener: HTTPS with mutual TLS on its own uvicorn server.

Only client certificates of the fleet CA are accepted (``issuance.listener.
client_ca_file``; revoked ones refused with ``client_crl_file``). uvicorn
does not put the peer certificate into the ASGI scope, so
:class:`ClientCertProtocol` reads it from the TLS connection and adds
``scope["extensions"]["tls"]["client_cn"]`` to every request of that
connection; the API takes the device id from there and nowhere else.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from central.config import CentralConfig
from central.db.engine import Database
from central.errors import CentralConfigError
from central.issuance.api import create_issuance_app
from central.issuance.config import IssuanceSection
from central.issuance.jpki_verify import CardVerifier, CrlRevocationChecker, load_roots
from central.issuance.orders import OrderDesk
from central.issuance.registry.sqlite import SqliteRegistry
from central.issuance.service import IssuanceService
from central.mtls import TLS_EXTENSION

log = logging.getLogger(__name__)
Asgi = Callable[..., Any]


def peer_common_name(ssl_object: Any) -> str | None:
    """The CN of the verified peer certificate of a TLS connection."""
    if ssl_object is None:
        return None
    peer = ssl_object.getpeercert() or {}
    for rdn in peer.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


class ClientCertProtocol(H11Protocol):
    """uvicorn's h11 protocol, with the client certificate's CN in the scope."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        cn = peer_common_name(transport.get_extra_info("ssl_object"))
        inner = cast(Asgi, self.app)

        async def with_client(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope.get("type") == "http":
                extensions = {**scope.get("extensions", {}), TLS_EXTENSION: {"client_cn": cn}}
                scope = {**scope, "extensions": extensions}
            await inner(scope, receive, send)

        self.app = cast(Any, with_client)


def tls_context(settings: IssuanceSection) -> ssl.SSLContext:
    """Server certificate, client certificates required from the fleet CA."""
    listener = settings.listener
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(listener.cert_file), str(listener.key_file))
        context.load_verify_locations(cafile=str(listener.client_ca_file))
        if listener.client_crl_file is not None:
            context.load_verify_locations(cafile=str(listener.client_crl_file))
            context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    except (OSError, ssl.SSLError) as exc:
        raise CentralConfigError("issuance.listener", [f"TLS files unusable: {exc}"]) from None
    context.verify_mode = ssl.CERT_REQUIRED
    return context


@dataclass
class IssuanceStack:
    """The service objects of the listener; ``close()`` releases the registry."""

    service: IssuanceService
    orders: OrderDesk
    registry: SqliteRegistry

    def close(self) -> None:
        self.registry.close()


def build_stack(settings: IssuanceSection, db: Database) -> IssuanceStack:
    roots = load_roots(settings.jpki_roots)
    verifier = CardVerifier(roots, CrlRevocationChecker(settings.crl_files))
    registry = SqliteRegistry(settings.registry_file, min_age=settings.min_age, create=False)
    service = IssuanceService(db, settings, verifier, registry)
    return IssuanceStack(service, OrderDesk(service), registry)


def make_server(
    config: CentralConfig,
    stack: IssuanceStack,
    host: str = "",
    port: int = 0,
    mount: Callable[[FastAPI], None] | None = None,
) -> uvicorn.Server:
    """The listener; ``mount`` adds other device APIs (card enrolment) to its
    app, which admit devices by their own rules."""
    settings = config.issuance
    context = tls_context(settings)
    app = create_issuance_app(stack.service, stack.orders)
    if mount is not None:
        mount(app)
    server_config = uvicorn.Config(
        app,
        host=host or settings.listener.host,
        port=port or settings.listener.port,
        http=ClientCertProtocol,
        ssl_context_factory=lambda _config, _default: context,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    return uvicorn.Server(server_config)


class IssuanceListener:
    """The listener on a thread of its own (beside ``central serve``'s API)."""

    def __init__(self, server: uvicorn.Server, stack: IssuanceStack) -> None:
        self.server = server
        self.stack = stack
        self.thread = threading.Thread(target=server.run, name="issuance-listener", daemon=True)

    def start(self) -> IssuanceListener:
        self.thread.start()
        return self

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.stack.close()
