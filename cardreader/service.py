"""The facade the kiosk and the CLI use: one object, small methods.

:class:`CardService` combines the reader layer, identification, JPKI
operations and credential references. It returns plain value objects
(:class:`CardInfo`, :class:`AuthOutcome`) that carry credential references,
never raw UIDs in their JSON form.
"""

from __future__ import annotations

import queue
from dataclasses import dataclass
from typing import Any

from cardreader import certs, credential, jpki
from cardreader.identify import CardIdentity, CardKind, identify
from cardreader.pcsc import DEFAULT_APDU_TIMEOUT, CardSession, Pcsc
from cardreader.watch import CardEvent, CardWatcher, Deliver


@dataclass(frozen=True)
class CardInfo:
    reader: str
    kind: CardKind
    reference: str | None
    certificate: certs.CertificateInfo | None = None
    pin_tries_left: int | None = None
    token_label: str | None = None
    apdu_count: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reader": self.reader, "kind": self.kind.value}
        out["reference"] = self.reference
        if self.certificate is not None:
            out["certificate"] = self.certificate.to_json()
            out["pin_tries_left"] = self.pin_tries_left
            out["token_label"] = self.token_label
        out["apdu_count"] = self.apdu_count
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


class CardService:
    """Everything the kiosk does with cards, over one PC/SC context."""

    def __init__(
        self,
        *,
        credential_key: bytes = credential.DEMO_KEY,
        reader_filter: str = "",
        apdu_timeout: float | None = DEFAULT_APDU_TIMEOUT,
        extended_reads: bool = False,
    ) -> None:
        self.pcsc = Pcsc(apdu_timeout=apdu_timeout)
        self.key = credential_key
        self.reader_filter = reader_filter
        self.extended_reads = extended_reads

    def readers(self) -> list[str]:
        return [r for r in self.pcsc.readers() if self.reader_filter in r]

    def reader(self, name: str | None = None) -> str:
        return self.pcsc.find_reader(name if name is not None else self.reader_filter)

    def identify(self, reader: str | None = None) -> CardIdentity:
        with self.pcsc.connect(self.reader(reader)) as session:
            return session.run(identify)

    def info(self, reader: str | None = None) -> CardInfo:
        """Kind and reference; for a My Number Card also certificate and tries."""
        with self.pcsc.connect(self.reader(reader)) as session:
            return session.run(self._info)

    def _info(self, session: CardSession) -> CardInfo:
        found = identify(session)
        if found.kind is not CardKind.MYNUMBER:
            ref = credential.member_reference(self.key, found.uid) if found.uid else None
            return CardInfo(session.reader, found.kind, ref, apdu_count=session.apdu_count)
        card = jpki.Jpki(session, extended_reads=self.extended_reads)
        card.select()
        info = certs.describe(card.read_auth_certificate())
        tries = card.pin_tries_left()
        ref = credential.certificate_reference(self.key, info.fingerprint)
        return CardInfo(
            session.reader, found.kind, ref, info, tries, found.token_label, session.apdu_count
        )

    def authenticate(self, pin: str, challenge: bytes, reader: str | None = None) -> AuthOutcome:
        """Verify the PIN and sign ``challenge`` (exclusive; card powered down after)."""
        name = self.reader(reader)
        result = jpki.authenticate(
            self.pcsc, name, pin, challenge, extended_reads=self.extended_reads
        )
        ref = credential.certificate_reference(self.key, result.info.fingerprint)
        return AuthOutcome(name, ref, result)

    def watch(self, deliver: queue.Queue[CardEvent] | Deliver, **kwargs: Any) -> CardWatcher:
        """A started watcher for this service's readers (caller closes it)."""
        return CardWatcher(deliver, reader_filter=self.reader_filter, **kwargs).start()

    def close(self) -> None:
        self.pcsc.close()

    def __enter__(self) -> CardService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
