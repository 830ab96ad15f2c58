"""The kiosk's port to central's issuance service (``sync/issuance_protocol``).

:class:`HttpsCentral` is the real side of
:class:`~kiosk.issuance.ports.CentralPort`: ``requests`` over HTTPS with the device certificate
(mutual TLS; central takes the device id from it), a timeout on every call.
A refusal (4xx with :class:`IssuanceErrorOut`) becomes
:class:`~kiosk.errors.CentralRefused` with the contract's code; anything
else (connection, TLS, timeout, 5xx, an answer that is not the contract)
becomes :class:`~kiosk.errors.CentralUnreachable`, and the person sees
"service temporarily unavailable". The simulated side is
:class:`kiosk.issuance.fake_central.FakeCentral`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TypeVar

import requests
from pydantic import BaseModel, ValidationError

from contracts.issuance import (
    BASE_PATH,
    CatalogueOut,
    ChallengeOut,
    ConfirmIn,
    ConfirmOut,
    IssuanceErrorOut,
    OrderIn,
    OrderOut,
    OutcomeIn,
    SessionIn,
    SessionOut,
)
from kiosk.errors import CentralRefused, CentralUnreachable

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


class HttpsCentral:
    """Central over HTTPS with mutual TLS (one ``requests.Session``)."""

    def __init__(
        self,
        url: str,
        *,
        ca_file: Path | None = None,
        cert_file: Path | None = None,
        key_file: Path | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.base = url.rstrip("/") + BASE_PATH
        self.timeout = timeout
        self._http = requests.Session()
        # Passed with every request: a Session's own ``verify`` loses to
        # REQUESTS_CA_BUNDLE in the environment, which would swap the fleet CA
        # for the system's public roots (found by the end-to-end test).
        self._verify: str | bool = str(ca_file) if ca_file is not None else True
        if cert_file is not None and key_file is not None:
            self._http.cert = (str(cert_file), str(key_file))

    def catalogue(self) -> CatalogueOut:
        return self._call("GET", "/catalogue", CatalogueOut)

    def challenge(self) -> ChallengeOut:
        return self._call("POST", "/challenges", ChallengeOut)

    def open_session(self, body: SessionIn) -> SessionOut:
        return self._call("POST", "/sessions", SessionOut, body)

    def close_session(self, session_id: str) -> None:
        self._request("DELETE", f"/sessions/{session_id}", None)

    def create_order(self, body: OrderIn) -> OrderOut:
        return self._call("POST", "/orders", OrderOut, body)

    def confirm(self, order_id: str, body: ConfirmIn) -> ConfirmOut:
        return self._call("POST", f"/orders/{order_id}/confirm", ConfirmOut, body)

    def report_outcome(self, order_id: str, body: OutcomeIn) -> OrderOut:
        return self._call("POST", f"/orders/{order_id}/outcome", OrderOut, body)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, answer: type[M], body: BaseModel | None = None) -> M:
        content = self._request(method, path, body)
        try:
            return answer.model_validate_json(content)
        except ValidationError as exc:
            log.warning("central answered outside the contract", extra={"path": path})
            raise CentralUnreachable(f"{method} {path}: unexpected answer") from exc

    def _request(self, method: str, path: str, body: BaseModel | None) -> bytes:
        json_body = body.model_dump(mode="json") if body is not None else None
        try:
            reply = self._http.request(
                method,
                self.base + path,
                json=json_body,
                timeout=self.timeout,
                verify=self._verify,
            )
        except requests.RequestException as exc:
            log.warning("central unreachable", extra={"path": path, "error": type(exc).__name__})
            raise CentralUnreachable(f"{method} {path}: {type(exc).__name__}") from exc
        if 400 <= reply.status_code < 500:
            raise _refusal(reply, path)
        if reply.status_code >= 300:
            log.warning("central failed", extra={"path": path, "status": reply.status_code})
            raise CentralUnreachable(f"{method} {path}: HTTP {reply.status_code}")
        return reply.content


def _refusal(reply: requests.Response, path: str) -> CentralRefused | CentralUnreachable:
    try:
        error = IssuanceErrorOut.model_validate_json(reply.content)
    except ValidationError:
        log.warning("central refused without a code", extra={"path": path})
        return CentralUnreachable(f"{path}: HTTP {reply.status_code} without an error code")
    log.info("central refused", extra={"path": path, "code": error.error})
    return CentralRefused(error.error, error.message, error.opens_at)
