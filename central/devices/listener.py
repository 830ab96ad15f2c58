"""The device listener: HTTPS with mutual TLS on its own uvicorn server.

Only client certificates of the fleet CA are accepted
(``devices.listener.client_ca_file``), never a revoked one: the fleet CRL
(``client_crl_file``) is required and read again whenever the file changes
(:class:`ReloadingTls`). uvicorn does not put the peer certificate into the
ASGI scope, so :class:`ClientCertProtocol` reads it from the TLS connection
and adds ``scope["extensions"]["tls"]`` = ``{"client_cn", "client_roles"}``
to every request of that connection; the apps it serves
(:func:`central.mtls.client_cn`, :func:`central.mtls.client_roles`) take the
device id and its provisioned roles from there and nowhere else. What it serves is composed by
``central/cli.py``: card enrolment and/or certificate issuance.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import uvicorn
from cryptography import x509
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from central.devices.config import DeviceListenerSection
from central.errors import CentralConfigError
from central.mtls import TLS_EXTENSION

log = logging.getLogger(__name__)
Asgi = Callable[..., Any]


# A device certificate names its provisioned role in a subject OU
# "role:<role>" (deploy/pki.py ROLE_UNIT_PREFIX; the same string, tested).
ROLE_UNIT_PREFIX = "role:"


def _subject(ssl_object: Any) -> list[tuple[str, str]]:
    if ssl_object is None:
        return []
    peer = ssl_object.getpeercert() or {}
    return [(str(key), str(value)) for rdn in peer.get("subject", ()) for key, value in rdn]


def peer_common_name(ssl_object: Any) -> str | None:
    """The CN of the verified peer certificate of a TLS connection."""
    return next((v for k, v in _subject(ssl_object) if k == "commonName"), None)


def peer_roles(ssl_object: Any) -> list[str]:
    """The roles the verified peer certificate names (OU ``role:<role>``)."""
    units = [v for k, v in _subject(ssl_object) if k == "organizationalUnitName"]
    return [u[len(ROLE_UNIT_PREFIX) :] for u in units if u.startswith(ROLE_UNIT_PREFIX)]


class ClientCertProtocol(H11Protocol):
    """uvicorn's h11 protocol, with the client certificate's CN and roles in the scope."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        client = {"client_cn": peer_common_name(ssl_object), "client_roles": peer_roles(ssl_object)}
        inner = cast(Asgi, self.app)

        async def with_client(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope.get("type") == "http":
                extensions = {**scope.get("extensions", {}), TLS_EXTENSION: client}
                scope = {**scope, "extensions": extensions}
            await inner(scope, receive, send)

        self.app = cast(Any, with_client)


def _check_crl(listener: DeviceListenerSection, now: datetime) -> None:
    """The CRL must be one of the client CA's and current: a stale or foreign
    CRL would make OpenSSL refuse every device, or check nothing."""
    crl_path, ca_path = listener.client_crl_file, listener.client_ca_file
    data = crl_path.read_bytes()
    pem = b"-----BEGIN X509 CRL-----" in data
    crl = x509.load_pem_x509_crl(data) if pem else x509.load_der_x509_crl(data)
    cas = x509.load_pem_x509_certificates(ca_path.read_bytes())
    if not any(ca.subject == crl.issuer and crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
               for ca in cas):  # fmt: skip
        raise ValueError(f"{crl_path} is not signed by the client CA")
    next_update = crl.next_update_utc
    if next_update is not None and next_update <= now:
        raise ValueError(f"{crl_path} expired on {next_update:%Y-%m-%d %H:%M} UTC")


def tls_context(listener: DeviceListenerSection, source: str = "") -> ssl.SSLContext:
    """Server certificate, client certificates required from the fleet CA and
    checked against the fleet CRL; unusable files are a configuration error (exit 3)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(listener.cert_file), str(listener.key_file))
        context.load_verify_locations(cafile=str(listener.client_ca_file))
        _check_crl(listener, datetime.now(UTC))
        context.load_verify_locations(cafile=str(listener.client_crl_file))
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise CentralConfigError(
            source or "devices.listener", [f"devices.listener: TLS files unusable: {exc}"]
        ) from None
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _file_state(path: Path) -> tuple[int, int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


class ReloadingTls:
    """The listener's TLS context, built again when the CRL file changes.

    Every handshake passes through :meth:`choose` (OpenSSL's server-name
    callback, called with or without SNI), which hands the connection the
    context of the CRL file as it is now: a device revoked while central runs
    is refused at its next connection. A changed CRL that cannot be used
    (unreadable, foreign, expired) refuses every device until it is fixed:
    fail closed, with one error line per change.
    """

    def __init__(self, listener: DeviceListenerSection, source: str = "") -> None:
        self.listener, self.source = listener, source
        self.crl_path = listener.client_crl_file
        self.state = _file_state(self.crl_path)
        self.base = tls_context(listener, source)  # what uvicorn holds
        self.base.sni_callback = self.choose
        self.current: ssl.SSLContext | None = self.base

    def choose(self, connection: Any, _server_name: str | None, _base: Any) -> int | None:
        state = _file_state(self.crl_path)
        if state != self.state:
            self.state = state
            try:
                self.current = tls_context(self.listener, self.source)
                log.info("device listener CRL reloaded", extra={"file": str(self.crl_path)})
            except CentralConfigError as exc:
                self.current = None
                log.error("device listener CRL unusable: every device refused",
                          extra={"file": str(self.crl_path), "error": str(exc)})  # fmt: skip
        if self.current is None:
            return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR
        connection.context = self.current
        return None


def device_app() -> FastAPI:
    """An empty app for the listener when issuance (whose app is the root)
    is off; the device APIs mount onto it."""
    return FastAPI(title="City kiosk device listener", docs_url=None, redoc_url=None,
                   openapi_url=None)  # fmt: skip


def make_server(
    listener: DeviceListenerSection, app: FastAPI, host: str = "", port: int = 0, source: str = ""
) -> uvicorn.Server:
    """The listener serving ``app`` (``host``/``port`` override the section)."""
    context = ReloadingTls(listener, source).base
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
