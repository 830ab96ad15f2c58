"""What card enrolment needs from the world, as Protocols: central's
enrolment service (:class:`EnrolmentCentral`, real side
:class:`kiosk.enrolment.central.HttpsEnrolmentCentral`) and the outbox
(:class:`EventSink`). The card comes through :mod:`kiosk.cards`, as for
check-in."""

from __future__ import annotations

from typing import Any, Protocol

from contracts.enrolment import CardIn, CardOut, TicketOut


class EnrolmentCentral(Protocol):
    """``contracts.enrolment``. Refusals raise the typed
    :class:`~kiosk.errors.EnrolmentRefused` of their code; no answer raises
    :class:`~kiosk.errors.CentralUnreachable`."""

    def redeem(self, code: str) -> TicketOut:
        """Turn the one-time code into a ticket for this device (uses the code up)."""

    def enrol(self, card: CardIn) -> CardOut:
        """Link the card; answers after central has committed the link."""

    def cancel(self, ticket: str) -> None:
        """The person left: the ticket can no longer be used."""

    def close(self) -> None: ...


class EventSink(Protocol):
    def append(self, type: str, data: Any = None) -> Any: ...
