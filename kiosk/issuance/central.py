"""The kiosk's port to central's issuance service (``contracts.issuance``).

:class:`HttpsCentral` is the real side of
:class:`~kiosk.issuance.ports.CentralPort`, on the HTTPS mutual-TLS client
both device contracts share (:mod:`kiosk.central_https`: certificate, a
timeout on every call). A refusal (4xx with :class:`IssuanceErrorOut`)
becomes :class:`~kiosk.errors.CentralRefused` with the contract's code;
anything else (connection, TLS, timeout, 5xx, an answer that is not the
contract) becomes :class:`~kiosk.errors.CentralUnreachable`, and the person
sees "service temporarily unavailable". The simulated side is
:class:`kiosk.issuance.fake_central.FakeCentral`.
"""

from __future__ import annotations

from pydantic import ValidationError

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
from kiosk.central_https import HttpsJsonClient
from kiosk.errors import CentralError, CentralRefused


class HttpsCentral(HttpsJsonClient):
    """Central's issuance endpoints over HTTPS with mutual TLS."""

    base_path = BASE_PATH

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

    def _refusal(self, status: int, content: bytes) -> CentralError | None:
        # Issuance refuses with 4xx only; a 5xx is central failing (unreachable).
        if status >= 500:
            return None
        try:
            error = IssuanceErrorOut.model_validate_json(content)
        except ValidationError:
            return None
        return CentralRefused(error.error, error.message, error.opens_at)
