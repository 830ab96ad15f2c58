"""Uploads of what a command collected (diagnostics, a screenshot) to
central's device listener: ``POST`` :data:`contracts.commands.ATTACHMENT_PATH`
over HTTPS with the device's client certificate (``[central.tls]``, else the
broker identity ``[broker.tls]``, as the touchscreens' clients do).

The body is the raw bytes with the command's Content-Type
(:data:`contracts.commands.ATTACHMENT_TYPES`); central answers 201, or a 4xx
JSON ``{"error": ...}`` that is final. A connection failure, a timeout or a
5xx is transient: :meth:`AttachmentUploader.upload` tries
:data:`ATTEMPTS` times (1 s, then 2 s apart) before it gives up.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from contracts.commands import ATTACHMENT_PATH, ATTACHMENT_TYPES, MAX_ATTACHMENT_BYTES
from sync.config import DeviceConfig
from sync.errors import SyncError

log = logging.getLogger(__name__)
ATTEMPTS = 3


class UploadError(SyncError):
    """An attachment did not reach central; ``code`` is the result code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Uploaded:
    bytes: int
    sha256: str

    def detail(self) -> dict[str, int | str]:
        return {"bytes": self.bytes, "sha256": self.sha256}


class AttachmentUploader:
    """One device's uploads to central (mutual TLS)."""

    def __init__(
        self,
        url: str,
        *,
        ca_file: Path | None,
        cert_file: Path | None,
        key_file: Path | None,
        timeout: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base = url.rstrip("/")
        self.timeout = timeout
        self._verify: str | bool = str(ca_file) if ca_file is not None else True
        self._cert = (str(cert_file), str(key_file)) if cert_file and key_file else None
        self._sleep = sleep

    @classmethod
    def for_device(cls, config: DeviceConfig) -> AttachmentUploader | None:
        """The uploader of ``[central]``; None when ``central.url`` is unset."""
        if not config.central.url:
            return None
        tls = config.central.tls or config.broker.tls
        return cls(
            config.central.url,
            ca_file=tls.ca_file if tls else None,
            cert_file=tls.cert_file if tls else None,
            key_file=tls.key_file if tls else None,
            timeout=config.central.timeout_seconds,
        )

    def upload(self, command_id: str, name: str, data: bytes) -> Uploaded:
        """Send ``data`` for the command; raises :class:`UploadError`."""
        limit = MAX_ATTACHMENT_BYTES.get(name)
        if limit is None:
            raise UploadError("upload_failed", f"{name} has no attachment")
        if len(data) > limit:
            raise UploadError("upload_failed", f"{len(data)} bytes is over the {limit} limit")
        url = self.base + ATTACHMENT_PATH.format(command_id=command_id)
        headers = {"Content-Type": ATTACHMENT_TYPES[name]}
        problem = ""
        for attempt in range(ATTEMPTS):
            if attempt:
                self._sleep(float(attempt))
            try:
                reply = requests.post(
                    url, data=data, headers=headers, timeout=self.timeout,
                    verify=self._verify, cert=self._cert,
                )  # fmt: skip
            except requests.RequestException as exc:
                problem = f"central unreachable ({type(exc).__name__})"
                log.warning("upload failed", extra={"command": command_id, "why": problem})
                continue
            if reply.status_code in (200, 201):
                log.info("attachment uploaded", extra={"command": command_id, "bytes": len(data)})
                return Uploaded(len(data), hashlib.sha256(data).hexdigest())
            if 400 <= reply.status_code < 500:
                why = f"central refused it: {_error(reply)} (HTTP {reply.status_code})"
                raise UploadError("upload_failed", why)
            problem = f"central failed (HTTP {reply.status_code})"
            log.warning("upload failed", extra={"command": command_id, "why": problem})
        raise UploadError("upload_failed", f"{problem}, {ATTEMPTS} attempts")


def _error(reply: requests.Response) -> str:
    try:
        body = reply.json()
    except ValueError:
        return "no error code"
    code = body.get("error") if isinstance(body, dict) else None
    return str(code)[:60] if code else "no error code"
