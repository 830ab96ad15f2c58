"""Central's web options for tests: a metadata token (``/metrics``, ``/docs``,
``/openapi.json`` are closed without one) and its header."""

from __future__ import annotations

from central.websec import WebOptions

METADATA_TOKEN = "metadata-token-for-tests-0123456789"
METADATA_AUTH = {"Authorization": f"Bearer {METADATA_TOKEN}"}
WITH_METADATA = WebOptions(metadata_token=METADATA_TOKEN)
