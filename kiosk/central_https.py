"""The HTTPS mutual-TLS client both device-side contracts with central share
(certificate issuance, card enrolment).

:class:`HttpsJsonClient` sends pydantic models as JSON over one
``requests.Session`` with the device certificate (central takes the device
id from it) and a timeout on every call. Each subclass names its contract's
base path (:attr:`HttpsJsonClient.base_path`) and turns central's error body
into its own refusal (:meth:`HttpsJsonClient._refusal`); everything else
that is not an answer of the contract (connection, TLS, timeout, 5xx without
a refusal, a body that does not validate) becomes
:class:`~kiosk.errors.CentralUnreachable`, which the touchscreens show as
"not available now, try later".
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar, Self, TypeVar

import requests
from pydantic import BaseModel, ValidationError

from kiosk.errors import CentralError, CentralUnreachable
from sync.config import DeviceConfig
from sync.errors import ConfigError

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


class HttpsJsonClient:
    """One contract's endpoints on central, over HTTPS with mutual TLS."""

    base_path: ClassVar[str] = ""  # the contract's BASE_PATH, set by each subclass

    def __init__(
        self,
        url: str,
        *,
        ca_file: Path | None = None,
        cert_file: Path | None = None,
        key_file: Path | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.base = url.rstrip("/") + self.base_path
        self.timeout = timeout
        self._http = requests.Session()
        # Passed with every request: a Session's own ``verify`` loses to
        # REQUESTS_CA_BUNDLE in the environment, which would swap the fleet CA
        # for the system's public roots (found by the end-to-end test).
        self._verify: str | bool = str(ca_file) if ca_file is not None else True
        if cert_file is not None and key_file is not None:
            self._http.cert = (str(cert_file), str(key_file))

    @classmethod
    def for_device(cls, config: DeviceConfig, needed_by: str) -> Self:
        """The client of the device's ``[central]``; the client certificate is
        ``[central.tls]`` or, unset, the device identity of ``[broker.tls]``.
        ``needed_by`` names what needs central when ``central.url`` is unset."""
        if not config.central.url:
            raise ConfigError(config.source, [f"central.url: {needed_by} needs central's URL"])
        tls = config.central.tls or config.broker.tls
        return cls(
            config.central.url,
            ca_file=tls.ca_file if tls else None,
            cert_file=tls.cert_file if tls else None,
            key_file=tls.key_file if tls else None,
            timeout=config.central.timeout_seconds,
        )

    def close(self) -> None:
        self._http.close()

    def _refusal(self, status: int, content: bytes) -> CentralError | None:
        """Central's error body as this contract's refusal; None when the
        answer carries no refusal of the contract (then: unreachable)."""
        return None

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
        status = reply.status_code
        if status >= 400:
            refusal = self._refusal(status, reply.content)
            if refusal is not None:
                log.info("central refused", extra={"path": path, "code": _code(refusal)})
                raise refusal
            if status < 500:
                log.warning("central refused without a code", extra={"path": path})
                raise CentralUnreachable(f"{path}: HTTP {status} without an error code")
        if status >= 300:
            log.warning("central failed", extra={"path": path, "status": status})
            raise CentralUnreachable(f"{method} {path}: HTTP {status}")
        return reply.content


def _code(refusal: CentralError) -> str:
    return str(getattr(refusal, "code", type(refusal).__name__))
