"""Checks of the network paths: the broker (MQTT v5 over mutual TLS, a real
CONNACK) and central (HTTPS GET of its health endpoint).

Failures are told apart because each has another fix: the name does not
resolve (DNS), nothing listens (refused), no answer (timeout), the peer's
certificate is not trusted or our certificate is not accepted (TLS), or the
broker answered the CONNACK with a refusal (authorisation).
"""

from __future__ import annotations

import socket
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import requests
from cryptography import x509
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion

from deploy.checks import CheckResult, DoctorContext, fail, not_checked, ok, warn
from sync.config import TlsSection

HEALTH_PATH = "/healthz"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps (requests and urllib3 nest the OS error)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        nested += [a for a in current.args if isinstance(a, BaseException)]
        todo += [n for n in nested if isinstance(n, BaseException)]


def network_failure(name: str, what: str, host: str, exc: BaseException) -> CheckResult:
    """One clear finding and action for a connection that could not be made."""
    causes = list(_causes(exc))
    text = " ".join(str(c) for c in causes)
    if any(isinstance(c, socket.gaierror) for c in causes) or "NameResolution" in text:
        return fail(
            name,
            f"{what}: the name {host!r} cannot be resolved (DNS)",
            f"check the host name in the config and the DNS/network settings"
            f" (`getent hosts {host}`)",
        )
    if any(isinstance(c, ConnectionRefusedError) for c in causes) or "refused" in text:
        return fail(
            name,
            f"{what}: connection refused (nothing listens there)",
            "check the port in the config, that the service runs, and firewalls on the way",
        )
    if any(isinstance(c, ssl.SSLCertVerificationError) for c in causes) or (
        "CERTIFICATE_VERIFY_FAILED" in text
    ):
        return fail(
            name,
            f"{what}: its TLS certificate is not trusted ({_short(causes)})",
            "ca_file must be the fleet CA of the bundle, and the host name must be"
            " the one in the server certificate",
        )
    if any(isinstance(c, ssl.SSLError) for c in causes):
        return fail(
            name,
            f"{what}: TLS handshake failed ({_short(causes)})",
            "check the certificate files of the bundle and the clock",
        )
    if any(isinstance(c, TimeoutError | socket.timeout) for c in causes) or "timed out" in text:
        return fail(
            name,
            f"{what}: no answer in time",
            "check the network path (cable, Wi-Fi, VPN, firewall)",
        )
    return fail(name, f"{what}: {_short(causes)}", "check the network and the address")


def _short(causes: list[BaseException]) -> str:
    return str(causes[-1] if len(causes) > 1 else causes[0])[:200]


def _certificate_problem(tls: TlsSection, device_id: str) -> str | None:
    for key, path in (
        ("ca_file", tls.ca_file),
        ("cert_file", tls.cert_file),
        ("key_file", tls.key_file),
    ):
        if not Path(path).is_file():
            return f"broker.tls.{key} {path} does not exist"
    try:
        cert = x509.load_pem_x509_certificate(Path(tls.cert_file).read_bytes())
    except (OSError, ValueError) as exc:
        return f"{tls.cert_file} is not a PEM certificate ({exc})"
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = str(names[0].value) if names else ""
    if cn != device_id:
        return f"{tls.cert_file} is issued to {cn!r}, not to this device {device_id!r}"
    now = datetime.now(UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return (
            f"{tls.cert_file} is valid {cert.not_valid_before_utc:%Y-%m-%d} to"
            f" {cert.not_valid_after_utc:%Y-%m-%d}, not now"
        )
    return None


class _Connack:
    """What the paho thread saw, handed to the checking thread through an event."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.reason: Any = None
        self.disconnected: Any = None

    def on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.reason = reason
        self.done.set()

    def on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if self.reason is None:
            self.disconnected = reason
            self.done.set()


def check_broker(ctx: DoctorContext) -> CheckResult:
    if ctx.config is None:
        return not_checked("broker")
    broker, device = ctx.config.broker, ctx.config.device.id
    where = f"broker {broker.host}:{broker.port}"
    if broker.tls is None:
        return fail(
            "broker",
            f"{where}: broker.tls is not set (no mutual TLS)",
            "install the device.toml of the device's provisioning bundle",
        )
    problem = _certificate_problem(broker.tls, device)
    if problem is not None:
        return fail(
            "broker",
            problem,
            "reinstall the device's own provisioning bundle"
            " (python -m deploy provision --rotate makes a new one)",
        )
    # Its own client id: the sync agent's session (client id = device id) stays up.
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"{device}-doctor", protocol=mqtt.MQTTv5
    )
    client.connect_timeout = ctx.timeout
    seen = _Connack()
    client.on_connect = seen.on_connect
    client.on_disconnect = seen.on_disconnect
    try:
        client.tls_set(
            ca_certs=str(broker.tls.ca_file),
            certfile=str(broker.tls.cert_file),
            keyfile=str(broker.tls.key_file),
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
        client.connect(broker.host, broker.port, keepalive=max(5, int(ctx.timeout) * 2))
    except (OSError, ValueError) as exc:
        return network_failure("broker", where, broker.host, exc)
    client.loop_start()
    try:
        seen.done.wait(ctx.timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    return _connack_result(where, seen)


def _connack_result(where: str, seen: _Connack) -> CheckResult:
    if seen.reason is not None and not seen.reason.is_failure:
        return ok("broker", f"{where}: CONNACK accepted over mutual TLS")
    if seen.reason is not None:
        return fail(
            "broker",
            f"{where}: the broker refused the connection: {seen.reason}",
            "the broker's ACL/registry must know this device: add it to the fleet"
            " (python -m deploy provision) and reload the broker",
        )
    if seen.disconnected is not None:
        return fail(
            "broker",
            f"{where}: the broker closed the connection before CONNACK"
            " (it did not accept the device certificate)",
            "the device certificate must come from the broker's fleet CA and not be"
            " revoked: reinstall the device's bundle",
        )
    return fail(
        "broker",
        f"{where}: TLS connected but no CONNACK within the timeout",
        "check that this port is the broker's MQTT TLS listener",
    )


def check_central(ctx: DoctorContext) -> CheckResult:
    if ctx.config is None:
        return not_checked("central")
    url = ctx.config.central.url.rstrip("/")
    if not url:
        if ctx.config.device.role == "counter":
            return fail(
                "central",
                "[central] url is not set; a counter kiosk needs central",
                "set [central] url to central's HTTPS address",
            )
        return ok("central", "not configured (not needed by a door device)")
    target = url + HEALTH_PATH
    options: dict[str, Any] = {}
    tls = ctx.config.broker.tls
    if url.startswith("https://") and tls is not None:
        # Devices trust the fleet CA and present their certificate (mutual TLS).
        options = {"verify": str(tls.ca_file), "cert": (str(tls.cert_file), str(tls.key_file))}
    host = urllib.parse.urlsplit(url).hostname or url
    try:
        response = requests.get(target, timeout=ctx.timeout, **options)
    except requests.RequestException as exc:
        return network_failure("central", f"central {url}", host, exc)
    if response.status_code != 200:
        return fail(
            "central",
            f"central {target} answered HTTP {response.status_code}",
            "central is up but unhealthy: ask city IT to check its services",
        )
    if not url.startswith("https://"):
        return warn(
            "central",
            f"central {url} answers, but over plain HTTP",
            "use central's https:// address in [central] url",
        )
    return ok("central", f"central {url} answers")
