"""The issuance wire contract between a counter kiosk and central (HTTPS).

Both ends import these models; neither invents a field. The kiosk talks to
central over HTTPS with its fleet device certificate (mutual TLS); central
takes the device id from the verified client certificate, never from a
body. Base path ``/api/issuance``:

=======  =================================  ==========================================
method   path                               body -> answer
=======  =================================  ==========================================
GET      /catalogue                         -> :class:`CatalogueOut` (service hours, kinds)
POST     /challenges                        -> :class:`ChallengeOut` (single use, short expiry)
POST     /sessions                          :class:`SessionIn` -> :class:`SessionOut`
DELETE   /sessions/{session_id}             -> 204 (card removed, idle, finished)
POST     /orders                            :class:`OrderIn` -> :class:`OrderOut`
POST     /orders/{order_id}/confirm         :class:`ConfirmIn` -> :class:`ConfirmOut`
POST     /orders/{order_id}/outcome         :class:`OutcomeIn` -> :class:`OrderOut`
=======  =================================  ==========================================

Every refusal is an HTTP 4xx with :class:`IssuanceErrorOut`; ``error`` is one
of :data:`ERROR_CODES` and decides the kiosk's screen. The reason a resident
is ineligible is never sent: only ``use_counter``.

The card signs :func:`signed_message` (challenge and device id), so a
signature made at one kiosk cannot open a session at another.

Privacy: nothing here carries a name, address, birth date or My Number. The
certificate travels as DER (it holds only an opaque CN); the resident is
resolved centrally from it and stays there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

BASE_PATH = "/api/issuance"
SIGNATURE_CONTEXT = b"city-kiosk/issuance/v1"
CHALLENGE_BYTES = 32

# Refusal codes (HTTP status in brackets).
ERROR_CODES: dict[str, int] = {
    "challenge_invalid": 409,  # unknown, used or expired: get a new one
    "signature_invalid": 401,  # the signature does not verify with the certificate
    "certificate_untrusted": 401,  # not issued by a configured JPKI auth root
    "certificate_expired": 403,
    "certificate_revoked": 403,
    "revocation_unavailable": 503,  # the CRL/OCSP could not be checked: fail closed
    "resident_unknown": 403,  # no resident for this certificate
    "use_counter": 403,  # ineligible (age, moved out, protection...): reason withheld
    "outside_hours": 403,  # the service (or this kind) is closed now
    "session_invalid": 409,  # unknown, closed or expired session
    "kind_unavailable": 422,  # a kind or option this resident may not order here
    "order_invalid": 422,  # copies out of range, empty order, option not offered
    "order_state": 409,  # confirm/outcome not allowed in the order's state
    "device_unknown": 403,  # client certificate not a registered counter device
    "request_invalid": 422,  # the body does not match the models (a kiosk bug)
    "service_unavailable": 503,  # central's database or registry is down: retry later
}

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Hex = Annotated[str, Field(pattern=r"^[0-9a-f]*$", max_length=8192)]


def signed_message(challenge: bytes, device_id: str) -> bytes:
    """What the card signs: context, challenge and the kiosk's device id."""
    return SIGNATURE_CONTEXT + b"\0" + challenge + b"\0" + device_id.encode("ascii")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IssuanceErrorOut(_Model):
    error: str
    message: str  # for logs and staff; the kiosk shows its own translated text
    opens_at: AwareDatetime | None = None  # with outside_hours: the next opening


class HoursOut(_Model):
    open_now: bool
    opens_at: AwareDatetime | None = None  # next opening when closed
    closes_at: AwareDatetime | None = None  # when open


class OptionOut(_Model):
    """One yes/no item or a choice; defaults are the least data."""

    id: Identifier  # e.g. household, relationship, honseki
    label_ja: str
    label_en: str
    kind: Literal["toggle", "choice"]
    default: str  # "false"/"true" for toggles, a choice id for choices
    choices: list[Identifier] = []  # for kind == "choice" (e.g. "self", "all")
    choice_labels_ja: dict[str, str] = {}
    choice_labels_en: dict[str, str] = {}


class KindOut(_Model):
    id: Identifier  # e.g. juminhyo, inkan, shotoku_kazei, koseki_zenbu
    label_ja: str
    label_en: str
    fee_yen: Annotated[int, Field(ge=0, le=100_000)]
    max_copies: Annotated[int, Field(ge=1, le=20)]
    options: list[OptionOut] = []
    open_now: bool = True  # a kind can have shorter hours (戸籍: weekdays)


class CatalogueOut(_Model):
    municipality_ja: str
    municipality_en: str
    hours: HoursOut
    kinds: list[KindOut]


class ChallengeOut(_Model):
    challenge_id: Identifier
    challenge: Hex  # CHALLENGE_BYTES random bytes
    expires_at: AwareDatetime


class SessionIn(_Model):
    challenge_id: Identifier
    certificate: Hex  # DER of the user-authentication certificate
    signature: Hex  # RSA PKCS#1 v1.5 SHA-256 over signed_message(...)


class SessionOut(_Model):
    session_id: Identifier
    expires_at: AwareDatetime
    kinds: list[KindOut]  # what this resident may order here, now


class OrderItemIn(_Model):
    kind: Identifier
    copies: Annotated[int, Field(ge=1, le=20)]
    options: dict[Identifier, str] = {}


class OrderIn(_Model):
    session_id: Identifier
    # Chosen by the kiosk; the same key returns the same order (retries).
    idempotency_key: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    items: Annotated[list[OrderItemIn], Field(min_length=1, max_length=10)]


class OrderItemOut(_Model):
    kind: Identifier
    copies: int
    fee_yen: int  # per copy
    options: dict[Identifier, str]


class OrderOut(_Model):
    order_id: Identifier
    status: Literal["pending", "confirmed", "printed", "failed", "voided", "refunded"]
    total_fee_yen: int
    items: list[OrderItemOut]


class ConfirmIn(_Model):
    payment_ref: Annotated[str, Field(min_length=1, max_length=64)]  # opaque terminal id


class DocumentOut(_Model):
    kind: Identifier
    issue_number: Annotated[str, Field(max_length=32)]
    copy_index: int  # 1..copies
    pdf: str  # base64 of the PDF
    sha256: Hex


class ConfirmOut(_Model):
    order_id: Identifier
    issued_at: datetime
    documents: list[DocumentOut]


class OutcomeIn(_Model):
    """What became of a confirmed order at the kiosk (for audit and refunds)."""

    status: Literal["printed", "failed", "voided", "refunded"]
    reason: Annotated[str, Field(max_length=64)] = ""  # e.g. out_of_paper, jammed
