"""Card identification by behaviour, not by ATR.

* My Number Card: SELECT of the full JPKI AID succeeds and the token-info
  file carries a JPKI token label.
* Member cards: the PC/SC GET DATA pseudo-APDU ``FF CA 00 00 00`` returns a
  UID; 8 bytes is a FeliCa IDm, 4/7/10 bytes an ISO 14443-A (MIFARE) UID.
* Anything else is an unknown card.

ATRs differ by reader and card generation, so they are never used to decide.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from cardreader import apdu
from cardreader.errors import StatusWordError
from cardreader.pcsc import CardSession, Response

log = logging.getLogger(__name__)

# Token labels (EF 0006) of the JPKI application: physical card, old 住基
# card, Android and iPhone tokens.
JPKI_TOKEN_LABELS = frozenset(
    {"JPKIAPICCTOKEN2", "JPKIAPICCTOKEN", "JPKIAPGPSETOKEN", "JPKIAPIOSTOKEN"}
)


class CardKind(StrEnum):
    MYNUMBER = "mynumber"
    FELICA = "felica"
    MIFARE = "mifare"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class CardIdentity:
    kind: CardKind
    # Member cards only: the UID / IDm. Never logged; turn it into a credential
    # reference (cardreader.credential) before it leaves the process.
    uid: bytes | None = None
    token_label: str | None = None

    def __repr__(self) -> str:  # keeps the UID out of tracebacks and logs
        return f"CardIdentity(kind={self.kind.value!r}, token_label={self.token_label!r})"


def identify(session: CardSession) -> CardIdentity:
    """Find out what card is in the reader (2-3 APDUs)."""
    label = jpki_token_label(session)
    if label is not None:
        return CardIdentity(CardKind.MYNUMBER, token_label=label)
    response = session.transmit(apdu.GET_UID)
    if response.ok and 4 <= len(response.data) <= 10:
        kind = CardKind.FELICA if len(response.data) == 8 else CardKind.MIFARE
        return CardIdentity(kind, uid=response.data)
    log.info("unknown card", extra={"reader": session.reader, "sw": f"{response.sw:04X}"})
    return CardIdentity(CardKind.UNKNOWN)


LABEL_BYTES = 16


def _select_and_read_label(session: CardSession) -> Response:
    response = session.transmit(apdu.select_ef(apdu.EF_TOKEN_INFO))
    if not response.ok:
        if response.sw != apdu.SW_NOT_FOUND:
            raise StatusWordError("SELECT EF 0006", response.sw, apdu.sw_meaning(response.sw))
        return response
    return session.transmit(apdu.read_binary(0, LABEL_BYTES))


def jpki_token_label(session: CardSession) -> str | None:
    """Select the JPKI AP and read its token label; None if not a JPKI card."""
    if not session.transmit(apdu.select_aid(apdu.JPKI_AID)).ok:
        return None
    # The JPKI AP answered: from here on, odd answers are errors, not "unknown".
    # READ BINARY by short EF identifier saves the SELECT; 16 bytes hold every
    # label (at most 15 characters, then space padding).
    response = session.transmit(apdu.read_binary_sfi(apdu.EF_TOKEN_INFO, 0, LABEL_BYTES))
    if response.sw in apdu.SW_NO_SFI:
        response = _select_and_read_label(session)
    if response.sw == apdu.SW_NOT_FOUND:
        return None
    if response.sw not in (apdu.SW_OK, *apdu.SW_END_OF_FILE):
        raise StatusWordError("READ BINARY 0006", response.sw, apdu.sw_meaning(response.sw))
    label = apdu.token_label(response.data)
    if label not in JPKI_TOKEN_LABELS:
        log.warning("JPKI application with an unknown token label", extra={"label": label})
        return None
    return label
