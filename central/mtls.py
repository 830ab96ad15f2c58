"""The device listener's client identity: the mutual-TLS listener
(:mod:`central.issuance.server`) puts the verified client certificate's CN
into ``scope["extensions"]["tls"]["client_cn"]``; every app it serves
(issuance, card enrolment) reads the device id from there and nowhere else."""

from __future__ import annotations

from starlette.requests import Request

TLS_EXTENSION = "tls"


def client_cn(request: Request) -> str | None:
    """The verified client certificate's CN, as the listener recorded it."""
    tls = request.scope.get("extensions", {}).get(TLS_EXTENSION) or {}
    value = tls.get("client_cn")
    return str(value) if value else None


def client_roles(request: Request) -> list[str]:
    """The roles the verified client certificate names (OU ``role:<role>``)."""
    tls = request.scope.get("extensions", {}).get(TLS_EXTENSION) or {}
    return [str(role) for role in tls.get("client_roles") or ()]
