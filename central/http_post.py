"""One JSON POST to a receiver outside central, with a timeout: what the
alert webhook (:mod:`central.ops.notify`) and the booking-system webhook
(:mod:`central.reservations.hooks`) both send. A failure is
:class:`PostFailed`; retrying is the caller's business."""

from __future__ import annotations

from collections.abc import Mapping

import requests


class PostFailed(RuntimeError):
    """The receiver did not take the message (no answer, or not 2xx)."""


def post_json(url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> None:
    """POST ``body`` (already-encoded JSON: a signature covers these bytes)."""
    try:
        response = requests.post(
            url,
            data=body,
            headers={"Content-Type": "application/json", **headers},
            timeout=timeout_s,
        )
    except requests.RequestException as exc:
        raise PostFailed(f"webhook {url}: {exc.__class__.__name__}") from exc
    if not 200 <= response.status_code < 300:
        raise PostFailed(f"webhook {url}: HTTP {response.status_code}")
