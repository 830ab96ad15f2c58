"""The facade the kiosk and the CLI use: one object, small methods.

:class:`CardService` combines the reader layer, identification, JPKI
operations and credential references. It returns plain value objects
(:class:`CardInfo`, :class:`AuthOutcome`) that carry credential references,
never raw UIDs in their JSON form.

Two ways to read a card:

* :meth:`CardService.tap` is check-in and enrolment: the fewest APDUs and
  bytes that still give a stable, unique reference. For a My Number Card:
  SELECT the JPKI application, read the token label and the first block of
  the user-auth certificate by short EF identifier (3 APDUs, about 210
  bytes): the ``j2`` reference from issuer and serial.
* :meth:`CardService.info` is the CLI's full look: the whole certificate,
  its validity and the PIN's retry counter, both JPKI references.

Migration from ``j1`` (fingerprint of the whole certificate): a service
given ``known_refs`` (does the device hold this reference?) falls back to
reading the rest of the certificate when a tap's ``j2`` is unknown, and
answers with ``j1`` when that one is known, so cards enrolled before keep
opening doors (docs/cardreader.md, "Card references and migration").
"""

from __future__ import annotations

import hashlib
import logging
import queue
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cardreader import certref, certs, credential, jpki
from cardreader.identify import CardIdentity, CardKind, identify
from cardreader.pcsc import DEFAULT_APDU_TIMEOUT, CardSession, Pcsc
from cardreader.watch import CardEvent, CardWatcher, Deliver

log = logging.getLogger(__name__)
KnownRefs = Callable[[str], bool]
"""Does this device know the reference (a reservation or an enrolment holds it)?"""


@dataclass(frozen=True)
class CardInfo:
    reader: str
    kind: CardKind
    reference: str | None
    certificate: certs.CertificateInfo | None = None
    pin_tries_left: int | None = None
    token_label: str | None = None
    apdu_count: int = 0
    bytes_received: int = 0
    # My Number Card: the other JPKI reference when both were computed (the
    # j2 one when ``reference`` is a legacy j1 match, and the other way round).
    alternate: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reader": self.reader, "kind": self.kind.value}
        out["reference"] = self.reference
        if self.alternate is not None:
            out["alternate_reference"] = self.alternate
        if self.certificate is not None:
            out["certificate"] = self.certificate.to_json()
            out["pin_tries_left"] = self.pin_tries_left
        if self.token_label is not None:
            out["token_label"] = self.token_label
        out["apdu_count"] = self.apdu_count
        out["bytes_received"] = self.bytes_received
        return out


@dataclass(frozen=True)
class AuthOutcome:
    reader: str
    reference: str
    result: jpki.AuthResult

    def to_json(self) -> dict[str, Any]:
        return {
            "reader": self.reader,
            "reference": self.reference,
            "certificate": self.result.info.to_json(),
            "certificate_der_hex": self.result.certificate.hex(),
            "challenge": self.result.challenge.hex(),
            "signature": self.result.signature.hex(),
            "apdu_count": self.result.apdu_count,
        }


def jpki_reference(key: bytes, der: bytes) -> str:
    """The ``j2`` reference of a whole certificate (the same as a tap's)."""
    head = certref.parse_head(der)
    return credential.issuer_serial_reference(key, head.issuer, head.serial)


class CardService:
    """Everything the kiosk does with cards, over one PC/SC context."""

    def __init__(
        self,
        *,
        credential_key: bytes = credential.DEMO_KEY,
        reader_filter: str = "",
        apdu_timeout: float | None = DEFAULT_APDU_TIMEOUT,
        extended_reads: bool = False,
        known_refs: KnownRefs | None = None,
    ) -> None:
        self.pcsc = Pcsc(apdu_timeout=apdu_timeout)
        self.key = credential_key
        self.reader_filter = reader_filter
        self.extended_reads = extended_reads
        self.known_refs = known_refs

    def readers(self) -> list[str]:
        return [r for r in self.pcsc.readers() if self.reader_filter in r]

    def reader(self, name: str | None = None) -> str:
        return self.pcsc.find_reader(name if name is not None else self.reader_filter)

    def identify(self, reader: str | None = None) -> CardIdentity:
        with self.pcsc.connect(self.reader(reader)) as session:
            return session.run(identify)

    def tap(self, reader: str | None = None) -> CardInfo:
        """Kind and reference with the fewest APDUs and bytes (check-in, enrolment)."""
        with self.pcsc.connect(self.reader(reader)) as session:
            return session.run(self._tap)

    def _tap(self, session: CardSession) -> CardInfo:
        found = identify(session)  # a My Number Card's JPKI AP stays selected
        if found.kind is not CardKind.MYNUMBER:
            return self._member(session, found)
        card = jpki.Jpki(session, extended_reads=self.extended_reads)
        head, read = card.read_auth_head()
        ref = credential.issuer_serial_reference(self.key, head.issuer, head.serial)
        alternate = None
        if self.known_refs is not None and not self.known_refs(ref):
            # Transition: a card enrolled under its j1 reference. Costs the
            # rest of the certificate, only for references the device lacks.
            der = card.read_auth_certificate_rest(read)
            legacy = credential.certificate_reference(self.key, hashlib.sha256(der).digest())
            if self.known_refs(legacy):
                log.info("card matched by its legacy reference", extra={"reader": session.reader})
                ref, alternate = legacy, ref
        return CardInfo(
            session.reader, found.kind, ref, token_label=found.token_label,
            apdu_count=session.apdu_count, bytes_received=session.bytes_received,
            alternate=alternate,
        )  # fmt: skip

    def _member(self, session: CardSession, found: CardIdentity) -> CardInfo:
        ref = credential.member_reference(self.key, found.uid) if found.uid else None
        return CardInfo(
            session.reader, found.kind, ref,
            apdu_count=session.apdu_count, bytes_received=session.bytes_received,
        )  # fmt: skip

    def info(self, reader: str | None = None) -> CardInfo:
        """Kind and reference; for a My Number Card also the whole certificate,
        the PIN's tries and the legacy reference (``alternate``)."""
        with self.pcsc.connect(self.reader(reader)) as session:
            return session.run(self._info)

    def _info(self, session: CardSession) -> CardInfo:
        found = identify(session)
        if found.kind is not CardKind.MYNUMBER:
            return self._member(session, found)
        card = jpki.Jpki(session, extended_reads=self.extended_reads)
        card.select()
        der = card.read_auth_certificate()
        info = certs.describe(der)
        tries = card.pin_tries_left()
        return CardInfo(
            session.reader, found.kind, jpki_reference(self.key, der), info, tries,
            found.token_label, session.apdu_count, session.bytes_received,
            alternate=credential.certificate_reference(self.key, info.fingerprint),
        )  # fmt: skip

    def authenticate(self, pin: str, challenge: bytes, reader: str | None = None) -> AuthOutcome:
        """Verify the PIN and sign ``challenge`` (exclusive; card powered down after)."""
        name = self.reader(reader)
        result = jpki.authenticate(
            self.pcsc, name, pin, challenge, extended_reads=self.extended_reads
        )
        return AuthOutcome(name, jpki_reference(self.key, result.certificate), result)

    def watch(self, deliver: queue.Queue[CardEvent] | Deliver, **kwargs: Any) -> CardWatcher:
        """A started watcher for this service's readers (caller closes it)."""
        return CardWatcher(deliver, reader_filter=self.reader_filter, **kwargs).start()

    def close(self) -> None:
        self.pcsc.close()

    def __enter__(self) -> CardService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
