"""Issuance on the device listener (:mod:`central.devices.listener`): the
service objects behind ``/api/issuance`` and the listener serving issuance
alone (``python -m central issuance serve``). ``central serve`` mounts
issuance onto the shared device listener instead (``central/cli.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import uvicorn

from central.config import CentralConfig
from central.db.engine import Database
from central.devices.listener import make_server
from central.errors import CentralConfigError
from central.issuance.api import create_issuance_app
from central.issuance.config import IssuanceSection
from central.issuance.jpki_verify import CardVerifier, CrlRevocationChecker, load_roots
from central.issuance.orders import OrderDesk
from central.issuance.registry.sqlite import SqliteRegistry
from central.issuance.service import IssuanceService


@dataclass
class IssuanceStack:
    """The service objects of issuance; ``close()`` releases the registry."""

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


def issuance_server(
    config: CentralConfig, stack: IssuanceStack, host: str = "", port: int = 0
) -> uvicorn.Server:
    """The device listener serving issuance only (no card enrolment)."""
    listener = config.devices.listener
    if listener is None:
        raise CentralConfigError(config.source, ["devices.listener: required to serve issuance"])
    app = create_issuance_app(stack.service, stack.orders)
    return make_server(listener, app, host, port, config.source)
