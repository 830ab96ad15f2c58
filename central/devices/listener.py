"""The device listener: HTTPS with mutual TLS on its own uvicorn server.

Only client certificates of the fleet CA are accepted
(``devices.listener.client_ca_file``; revoked ones refused with
``client_crl_file``). uvicorn does not put the peer certificate into the ASGI
scope, so :class:`ClientCertProtocol` reads it from the TLS connection and
adds ``scope["extensions"]["tls"]["client_cn"]`` to every request of that
connection; the apps it serves (:func:`central.mtls.client_cn`) take the
device id from there and nowhere else. What it serves is composed by
``central/cli.py``: card enrolment and/or certificate issuance.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from collections.abc import Callable
from typing import Any, cast

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from central.devices.config import DeviceListenerSection
from central.errors import CentralConfigError
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


def tls_context(listener: DeviceListenerSection, source: str = "") -> ssl.SSLContext:
    """Server certificate, client certificates required from the fleet CA;
    unreadable files are a configuration error (exit 3)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(listener.cert_file), str(listener.key_file))
        context.load_verify_locations(cafile=str(listener.client_ca_file))
        if listener.client_crl_file is not None:
            context.load_verify_locations(cafile=str(listener.client_crl_file))
            context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    except (OSError, ssl.SSLError) as exc:
        raise CentralConfigError(
            source or "devices.listener", [f"devices.listener: TLS files unusable: {exc}"]
        ) from None
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def device_app() -> FastAPI:
    """An empty app for the listener when issuance (whose app is the root)
    is off; the device APIs mount onto it."""
    return FastAPI(title="City kiosk device listener", docs_url=None, redoc_url=None,
                   openapi_url=None)  # fmt: skip


def make_server(
    listener: DeviceListenerSection, app: FastAPI, host: str = "", port: int = 0, source: str = ""
) -> uvicorn.Server:
    """The listener serving ``app`` (``host``/``port`` override the section)."""
    context = tls_context(listener, source)
    server_config = uvicorn.Config(
        app,
        host=host or listener.host,
        port=port or listener.port,
        http=ClientCertProtocol,
        ssl_context_factory=lambda _config, _default: context,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    return uvicorn.Server(server_config)


class DeviceListener:
    """The listener on a thread of its own (beside ``central serve``'s API);
    ``on_close`` releases what the mounted APIs hold (the issuance registry)."""

    def __init__(self, server: uvicorn.Server, on_close: Callable[[], None] = lambda: None) -> None:
        self.server = server
        self.on_close = on_close
        self.thread = threading.Thread(target=server.run, name="device-listener", daemon=True)

    def start(self) -> DeviceListener:
        self.thread.start()
        return self

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.on_close()
