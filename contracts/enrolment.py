"""The card enrolment wire contract between a device and central (HTTPS).

A facility user links a card to their membership at a device: they type a
short one-time enrolment code (issued to them by staff in the dashboard, or
by themselves on the booking site), then tap the card. The device computes
the card's opaque reference exactly as check-in does (the fleet credential
key's HMAC over the card's identity) and sends only that reference: a card's
UID, serial or certificate never leaves the device in clear.

Both ends import these models; neither invents a field. The device talks to
central's device listener over HTTPS with its fleet certificate (mutual TLS);
central takes the device id from the verified client certificate, never from
a body. Base path ``/api/enrolment``:

=======  =========================  ============================================
method   path                       body -> answer
=======  =========================  ============================================
POST     /tickets                   :class:`TicketIn` -> :class:`TicketOut`
POST     /cards                     :class:`CardIn` -> :class:`CardOut`
DELETE   /tickets/{ticket}          -> 204 (the person left or cancelled)
=======  =========================  ============================================

``POST /tickets`` redeems the one-time code for a short-lived ticket bound to
this device (the code is then used up); ``POST /cards`` links the card and
answers only after central has committed the link, so a device that says
"your card is enrolled" says what is true. Every refusal is an HTTP 4xx/5xx
with :class:`EnrolmentErrorOut`; ``error`` is one of :data:`ERROR_CODES` and
decides the device's screen.

Privacy: nothing here carries a name, e-mail address or card identity. The
member is resolved at central from the code; the device learns only the
member's preferred language (to speak to them in it) and the label to show.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

BASE_PATH = "/api/enrolment"

# Digits only, so the same numeric keypad as PINs and reservation codes types it.
CODE_PATTERN = r"^[0-9]{8}$"
# The reference form check-in computes (cardreader.credential): a kind letter
# (m: member card, j: My Number Card certificate), a version, 160 bits base32.
# j2 (issuer + serial) is what devices compute now; j1 (whole-certificate
# fingerprint) is still accepted from devices not yet upgraded.
CREDENTIAL_REF_PATTERN = r"^(m1|j1|j2)(-[a-z2-7]{8}){4}$"

# Refusal codes (HTTP status in brackets).
ERROR_CODES: dict[str, int] = {
    "code_invalid": 404,  # no such code (or typed wrong): try again or ask staff
    "code_expired": 410,  # the code's time ran out: get a new one
    "code_used": 409,  # the code was already redeemed
    "ticket_invalid": 409,  # unknown, expired, or another device's ticket: start again
    "member_suspended": 403,  # the membership is suspended: see staff
    "card_bound_elsewhere": 409,  # the card is already enrolled to another member
    "card_limit": 409,  # the member has as many active cards as allowed
    "too_many_attempts": 429,  # this device typed too many wrong codes: wait
    "device_unknown": 403,  # client certificate not a registered device
    "request_invalid": 422,  # the body does not match the models (a device bug)
    "service_unavailable": 503,  # central's database is down: retry later
}

CardKind = Literal["member_card", "mynumber_card"]
Language = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EnrolmentErrorOut(_Model):
    error: str
    message: str  # for logs and staff; the device shows its own translated text
    retry_after_seconds: int | None = None  # with too_many_attempts


class TicketIn(_Model):
    code: Annotated[str, Field(pattern=CODE_PATTERN)]


class TicketOut(_Model):
    ticket: Annotated[str, Field(min_length=16, max_length=128)]
    expires_at: AwareDatetime
    language: Language  # the member's preferred language, for the screens that follow
    cards_enrolled: Annotated[int, Field(ge=0)]  # active cards the member has already


class CardIn(_Model):
    ticket: Annotated[str, Field(min_length=16, max_length=128)]
    credential_ref: Annotated[str, Field(pattern=CREDENTIAL_REF_PATTERN)]
    kind: CardKind
    # A label the member may recognise the card by ("blue card"); not personal data.
    label: Annotated[str, Field(max_length=40)] = ""


class CardOut(_Model):
    status: Literal["enrolled", "already_enrolled"]  # already: this member, same card
    card_id: Annotated[str, Field(min_length=1, max_length=64)]
    # When devices of the member's facilities will open for this card: at the
    # next reservation delta they receive (seconds while online).
    effective: Literal["next_sync"] = "next_sync"
