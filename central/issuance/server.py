"""Issuance on the device listener (:mod:`central.devices.listener`): the
service objects behind ``/api/issuance`` and the listener serving issuance
alone (``python -m central issuance serve``). ``central serve`` mounts
issuance onto the shared device listener instead (``central/cli.py``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import uvicorn
from sqlalchemy.exc import SQLAlchemyError

from central.config import CentralConfig
from central.db.engine import Database
from central.devices.listener import make_server
from central.errors import CentralConfigError
from central.issuance.api import create_issuance_app
from central.issuance.config import IssuanceSection
from central.issuance.jpki_verify import CardVerifier, CrlRevocationChecker, load_roots
from central.issuance.orders import OrderDesk
from central.issuance.pdf import load_font
from central.issuance.registry.sqlite import SqliteRegistry
from central.issuance.service import IssuanceService

log = logging.getLogger(__name__)


class IssuancePurger:
    """A thread that deletes expired PDFs (:meth:`OrderDesk.purge_documents`)
    and old challenges (:meth:`IssuanceService.purge_challenges`) every
    ``interval`` seconds, so no PDF outlives ``document_seconds`` by much even
    when no kiosk calls, and no kiosk's request waits for the cleaning; a
    database error is logged and tried again."""

    def __init__(self, orders: OrderDesk, interval: float) -> None:
        self.orders, self.interval = orders, interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="issuance-purge", daemon=True)

    def purge(self) -> None:
        try:
            self.orders.purge_documents()
            self.orders.service.purge_challenges()
        except SQLAlchemyError as exc:
            log.error("issuance purge failed", extra={"error": type(exc).__name__})

    def _run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.purge()

    def start(self) -> IssuancePurger:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)


@dataclass
class IssuanceStack:
    """The service objects of issuance; ``close()`` stops the purge and
    releases the registry."""

    service: IssuanceService
    orders: OrderDesk
    registry: SqliteRegistry
    purger: IssuancePurger

    def close(self) -> None:
        self.purger.stop()
        self.registry.close()


def build_stack(settings: IssuanceSection, db: Database) -> IssuanceStack:
    roots = load_roots(settings.jpki_roots)
    verifier = CardVerifier(roots, CrlRevocationChecker(settings.crl_files))
    registry = SqliteRegistry(settings.registry_file, min_age=settings.min_age, create=False)
    service = IssuanceService(db, settings, verifier, registry)
    orders = OrderDesk(service)
    load_font()
    purger = IssuancePurger(orders, purge_interval(settings.document_seconds)).start()
    return IssuanceStack(service, orders, registry, purger)


def purge_interval(document_seconds: int) -> float:
    """A tenth of the keeping time, at most a minute."""
    return min(60.0, document_seconds / 10)


def issuance_server(
    config: CentralConfig, stack: IssuanceStack, host: str = "", port: int = 0
) -> uvicorn.Server:
    """The device listener serving issuance only (no card enrolment)."""
    listener = config.devices.listener
    if listener is None:
        raise CentralConfigError(config.source, ["devices.listener: required to serve issuance"])
    app = create_issuance_app(stack.service, stack.orders)
    return make_server(listener, app, host, port, config.source)
