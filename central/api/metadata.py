"""The API's metadata: ``/metrics``, ``/docs`` and ``/openapi.json``.

They tell an attacker what the fleet is and how to address it, so they are
never open to anyone who reaches the API. Configured (``[api]`` in
docs/central.md) one of:

* ``metadata_port``: served only on a separate listener (bind it to a
  management network or loopback); the main API answers 404;
* ``metadata_token_file``: on the main API with ``Authorization: Bearer
  <token>`` (401 without it);
* neither: not served at all (404).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from central.db.engine import Database
from central.ops.metrics import add_metrics
from central.websec import SecurityHeaders, WebOptions, bearer_matches

log = logging.getLogger(__name__)


class MetadataListenerError(RuntimeError):
    """The separate metadata listener could not start (port taken, ...)."""


def add_metadata(app: FastAPI, db: Database, web: WebOptions) -> FastAPI | None:
    """Put the metadata where ``web`` says; returns the separate listener's
    app when there is one (started with :class:`MetadataListener`)."""
    if web.metadata_listener is not None:
        meta = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
        _routes(meta, app, db, ())
        meta.add_middleware(SecurityHeaders)
        return meta
    if web.metadata_token is not None:
        _routes(app, app, db, (Depends(_token_check(web.metadata_token)),))
    return None


def _token_check(token: str) -> Any:
    def check(request: Request) -> None:
        if not bearer_matches(request, token):
            log.warning("metadata refused", extra={"path": request.url.path})
            raise HTTPException(401, "metadata token required",
                                headers={"WWW-Authenticate": "Bearer"})  # fmt: skip

    return check


def _routes(target: FastAPI, api: FastAPI, db: Database, guard: Sequence[Any]) -> None:
    @target.get("/openapi.json", include_in_schema=False, dependencies=list(guard))
    def openapi() -> JSONResponse:
        return JSONResponse(api.openapi())

    @target.get("/docs", include_in_schema=False, dependencies=list(guard))
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{api.title} docs")

    add_metrics(target, db, guard)


class MetadataListener:
    """The separate listener: uvicorn on its own thread, started and stopped
    with the API app (its lifespan)."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                                proxy_headers=False, lifespan="off")  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name="metadata", daemon=True)
        self.where = f"{host}:{port}"

    def _run(self) -> None:
        try:
            self.server.run()
        except SystemExit:  # uvicorn's answer to a port it cannot bind (logged by it)
            log.error("metadata listener stopped", extra={"listen": self.where})

    def start(self, timeout: float = 10.0) -> MetadataListener:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise MetadataListenerError(f"metadata listener on {self.where} did not start")
            time.sleep(0.02)
        log.info("metadata listener started", extra={"listen": self.where})
        return self

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
