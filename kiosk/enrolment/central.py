"""Central's card enrolment endpoints (``contracts.enrolment``) over HTTPS
with mutual TLS, on the client the issuance port shares
(:mod:`kiosk.central_https`). Every refusal raises the typed error of its
code (:data:`kiosk.errors.ENROLMENT_REFUSALS`); no answer, or one outside
the contract, raises :class:`~kiosk.errors.CentralUnreachable`."""

from __future__ import annotations

from pydantic import ValidationError

from contracts.enrolment import (
    BASE_PATH,
    CardIn,
    CardOut,
    EnrolmentErrorOut,
    TicketIn,
    TicketOut,
)
from kiosk.central_https import HttpsJsonClient
from kiosk.errors import CentralError, enrolment_refusal


class HttpsEnrolmentCentral(HttpsJsonClient):
    """:class:`~kiosk.enrolment.ports.EnrolmentCentral` over HTTPS."""

    base_path = BASE_PATH

    def redeem(self, code: str) -> TicketOut:
        return self._call("POST", "/tickets", TicketOut, TicketIn(code=code))

    def enrol(self, card: CardIn) -> CardOut:
        return self._call("POST", "/cards", CardOut, card)

    def cancel(self, ticket: str) -> None:
        self._request("DELETE", f"/tickets/{ticket}", None)

    def _refusal(self, status: int, content: bytes) -> CentralError | None:
        # Every enrolment refusal, 503 service_unavailable included, carries
        # its code; a 5xx without one is central failing (unreachable).
        try:
            error = EnrolmentErrorOut.model_validate_json(content)
        except ValidationError:
            return None
        return enrolment_refusal(error.error, error.message, error.retry_after_seconds)
