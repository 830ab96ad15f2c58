"""The central issuance service: catalogue, challenges, sessions.

Orders, confirmation and statistics are in :mod:`central.issuance.orders`.
Every state lives in the database, so several API workers agree. Every
refusal raises :class:`central.errors.IssuanceRefused` with a contract code
(:data:`contracts.issuance.ERROR_CODES`); the reason a resident is sent to
the counter is logged as a coarse code and never returned.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Connection, Row

from central.db.engine import Database, aware, utc
from central.db.tables import issuance_challenges, issuance_sessions
from central.errors import IssuanceRefused
from central.issuance import queries as q
from central.issuance.config import IssuanceSection, KindSection
from central.issuance.hours import (
    closes_at,
    is_open,
    kind_schedule,
    next_opening,
    service_schedule,
)
from central.issuance.jpki_verify import CardVerifier
from central.issuance.registry.adapter import CertificateKey, ResidentRegistry
from contracts.issuance import (
    CHALLENGE_BYTES,
    CatalogueOut,
    ChallengeOut,
    HoursOut,
    KindOut,
    OptionOut,
    SessionIn,
    SessionOut,
    signed_message,
)

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
# The role a device certificate must carry to issue (provisioned with
# python -m deploy provision --role counter).
COUNTER_ROLE = "counter"

# The options central can apply; the least data is the default.
OPTIONS: dict[str, OptionOut] = {
    "household": OptionOut(
        id="household", label_ja="記載する人", label_en="Who is listed", kind="choice",
        default="self", choices=["self", "all"],
        choice_labels_ja={"self": "本人のみ", "all": "世帯全員"},
        choice_labels_en={"self": "Only me", "all": "Whole household"},
    ),
    "relationship": OptionOut(
        id="relationship", label_ja="世帯主・続柄を記載する",
        label_en="Show the head of household and relationship", kind="toggle", default="false",
    ),
    "honseki": OptionOut(
        id="honseki", label_ja="本籍・筆頭者を記載する",
        label_en="Show the registered domicile (honseki) and its head", kind="toggle",
        default="false",
    ),
}  # fmt: skip


def new_id() -> str:
    return secrets.token_hex(16)


def utc_now() -> datetime:
    return datetime.now(UTC)


def refuse_closed(opens_at: datetime | None, what: str = "the service") -> IssuanceRefused:
    return IssuanceRefused("outside_hours", f"{what} is closed now", opens_at)


@dataclass(frozen=True)
class SessionRow:
    id: str
    device: str
    resident_ref: str
    kinds: list[str]
    expires_at: datetime


class IssuanceService:
    """Catalogue, challenges and sessions over the central database."""

    def __init__(
        self,
        db: Database,
        settings: IssuanceSection,
        verifier: CardVerifier,
        registry: ResidentRegistry,
        now: Clock = utc_now,
    ) -> None:
        self.db = db
        self.settings = settings
        self.verifier = verifier
        self.registry = registry
        self.now = now
        self.zone = settings.zone

    # Hours and catalogue

    def kind_open(self, kind: KindSection, moment: datetime) -> bool:
        return is_open(kind_schedule(self.settings.hours, kind), moment, self.zone)

    def kind_opens_at(self, kind: KindSection, moment: datetime) -> datetime | None:
        return next_opening(kind_schedule(self.settings.hours, kind), moment, self.zone)

    def hours(self, moment: datetime) -> HoursOut:
        schedule = service_schedule(self.settings.hours)
        if is_open(schedule, moment, self.zone):
            return HoursOut(open_now=True, closes_at=closes_at(schedule, moment, self.zone))
        return HoursOut(open_now=False, opens_at=next_opening(schedule, moment, self.zone))

    def kind_out(
        self, kind: KindSection, moment: datetime, open_now: bool | None = None
    ) -> KindOut:
        """``open_now``: already known by the caller (else worked out here)."""
        if open_now is None:
            open_now = self.kind_open(kind, moment)
        return KindOut(
            id=kind.id, label_ja=kind.label_ja, label_en=kind.label_en, fee_yen=kind.fee_yen,
            max_copies=kind.max_copies, options=[OPTIONS[o] for o in kind.options],
            open_now=open_now,
        )  # fmt: skip

    def catalogue(self) -> CatalogueOut:
        moment = self.now()
        return CatalogueOut(
            municipality_ja=self.settings.municipality_ja,
            municipality_en=self.settings.municipality_en,
            hours=self.hours(moment),
            kinds=[self.kind_out(k, moment) for k in self.settings.kinds],
        )

    # Devices

    def check_device(self, device: str | None, roles: Sequence[str] = ()) -> str:
        """The verified client certificate's CN, if this device may issue: its
        certificate carries the counter role set at provisioning (door
        terminals and central's own identity do not), and it is in
        ``allowed_devices`` when that is set."""
        allowed = self.settings.allowed_devices
        if not device or COUNTER_ROLE not in roles or (allowed and device not in allowed):
            extra = {"device": device or "", "roles": ",".join(roles)}
            log.warning("issuance device refused", extra=extra)
            raise IssuanceRefused("device_unknown", "this device may not issue certificates")
        return device

    # Challenges

    def new_challenge(self, device: str) -> ChallengeOut:
        moment = self.now()
        hours = self.hours(moment)
        if not hours.open_now:
            raise refuse_closed(hours.opens_at)
        challenge_id, challenge = new_id(), secrets.token_bytes(CHALLENGE_BYTES)
        expires = moment + timedelta(seconds=self.settings.challenge_seconds)
        # Not flushed on its own: a challenge lost to a power loss is merely
        # refused (challenge_invalid), and the attempt that uses it commits
        # durably before it answers. Old ones go in purge_challenges.
        with self.db.write(durable=False) as conn:
            conn.execute(q.INSERT_CHALLENGE, {
                "id": challenge_id, "device": device, "challenge": challenge.hex(),
                "created_at": utc(moment), "expires_at": utc(expires)})  # fmt: skip
        return ChallengeOut(
            challenge_id=challenge_id, challenge=challenge.hex(), expires_at=expires
        )

    def purge_challenges(self) -> int:
        """Delete challenges expired for an hour or more (used or not); how many."""
        before = utc(self.now() - timedelta(hours=1))
        with self.db.write(durable=False) as conn:
            return int(conn.execute(q.DELETE_OLD_CHALLENGES, {"p_before": before}).rowcount)

    def _consume_challenge(self, device: str, challenge_id: str, moment: datetime) -> bytes:
        """Single use: the first attempt consumes it, whatever its outcome.

        The consumption is visible to every worker at once (the conditional
        update decides between concurrent attempts) and is flushed by the
        attempt's own durable commit -- the session, the refusal's audit row
        or :meth:`_keep_consumed` -- before any answer leaves, so a power
        loss can only undo the consumption of an attempt that never answered
        and opened no session."""
        params = {"p_id": challenge_id, "p_device": device, "p_now": utc(moment)}
        with self.db.write(durable=False) as conn:
            value = conn.execute(q.CONSUME_CHALLENGE, params).scalar()
        if value is None:
            raise IssuanceRefused("challenge_invalid", "unknown, used or expired challenge")
        return bytes.fromhex(value)

    def _keep_consumed(self, challenge_id: str, moment: datetime) -> None:
        """The consumption again, durably: for an attempt that ends in an
        error rather than a session or an audited refusal."""
        with self.db.write() as conn:
            conn.execute(update(issuance_challenges).where(
                issuance_challenges.c.id == challenge_id).values(used_at=utc(moment)))  # fmt: skip

    # Sessions

    def open_session(self, device: str, body: SessionIn) -> SessionOut:
        moment = self.now()
        hours = self.hours(moment)
        if not hours.open_now:
            raise refuse_closed(hours.opens_at)
        challenge = self._consume_challenge(device, body.challenge_id, moment)
        try:
            return self._open_verified(device, body, challenge, moment)
        except IssuanceRefused:  # each refusal from here on is audited, durably
            raise
        except Exception:
            self._keep_consumed(body.challenge_id, moment)
            raise

    def _open_verified(
        self, device: str, body: SessionIn, challenge: bytes, moment: datetime
    ) -> SessionOut:
        """The card's proof, the resident and their kinds, the session."""
        try:
            der, signature = bytes.fromhex(body.certificate), bytes.fromhex(body.signature)
            message = signed_message(challenge, device)
            cert = self.verifier.verify(der, message, signature, moment)
        except ValueError:
            self._refused(device, None, "certificate_untrusted")
            raise IssuanceRefused(
                "certificate_untrusted", "malformed certificate or signature"
            ) from None
        except IssuanceRefused as exc:
            self._refused(device, None, exc.code)
            raise
        key = CertificateKey(cert.issuer, cert.serial, cert.fingerprint)
        resident = self.registry.resident_for(key)
        if resident is None:
            self._refused(device, None, "resident_unknown")
            raise IssuanceRefused("resident_unknown", "no resident is linked to this certificate")
        kinds = self._offered_kinds(device, resident, moment)
        session_id = new_id()
        expires = moment + timedelta(seconds=self.settings.session_seconds)
        with self.db.write() as conn:
            conn.execute(q.INSERT_SESSION, {
                "id": session_id, "device": device, "resident_ref": resident,
                "cert_fingerprint": cert.fingerprint, "kinds": [k.id for k in kinds],
                "created_at": utc(moment), "expires_at": utc(expires)})  # fmt: skip
            self.audit(conn, device, resident, "session_opened")
        offered = [self.kind_out(k, moment, open_now=True) for k in kinds]  # all open now
        return SessionOut(session_id=session_id, expires_at=expires, kinds=offered)

    def _offered_kinds(self, device: str, resident: str, moment: datetime) -> list[KindSection]:
        """The kinds this resident may order now; use_counter / outside_hours if none."""
        today = moment.astimezone(self.zone).date()
        eligible: list[KindSection] = []
        kinds = self.settings.kinds
        for kind, answer in zip(
            kinds, self.registry.eligibilities(resident, kinds, today), strict=True
        ):
            if answer.eligible:
                eligible.append(kind)
            else:  # the coarse reason stays here, for staff
                extra = {"device": device, "kind": kind.id, "reason": answer.reason}
                log.info("issuance kind withheld", extra=extra)
        if not eligible:
            self._refused(device, resident, "use_counter")
            raise IssuanceRefused("use_counter", "please use the counter")
        offered = [k for k in eligible if self.kind_open(k, moment)]
        if not offered:
            openings = [t for k in eligible if (t := self.kind_opens_at(k, moment)) is not None]
            self._refused(device, resident, "outside_hours")
            raise refuse_closed(min(openings) if openings else None, "what you may order")
        return offered

    def session(
        self, conn: Connection, device: str, session_id: str, moment: datetime
    ) -> SessionRow:
        row = conn.execute(q.SESSION, {"p_id": session_id, "p_device": device}).first()
        if row is None or row.closed_at is not None or aware(row.expires_at) <= moment:
            raise IssuanceRefused("session_invalid", "unknown, closed or expired session")
        return _session_row(row)

    def close_session(self, device: str, session_id: str) -> None:
        """Idempotent: closing a closed or unknown session of this device is fine."""
        moment = self.now()
        with self.db.write() as conn:
            conn.execute(update(issuance_sessions).where(
                issuance_sessions.c.id == session_id, issuance_sessions.c.device == device,
                issuance_sessions.c.closed_at.is_(None),
            ).values(closed_at=utc(moment)))  # fmt: skip

    # Audit

    def audit(
        self, conn: Connection, device: str, resident: str | None, action: str, **fields: Any
    ) -> None:
        """One audit row: who (device, opaque resident ref), when, what; never content."""
        row = {"at": utc(self.now()), "device": device, "resident_ref": resident, **fields}
        conn.execute(q.INSERT_AUDIT, {"action": action, **row})

    def _refused(self, device: str, resident: str | None, code: str) -> None:
        log.info("issuance session refused", extra={"device": device, "code": code})
        with self.db.write() as conn:
            self.audit(conn, device, resident, "session_refused", outcome=code)


def _session_row(row: Row[Any]) -> SessionRow:
    return SessionRow(row.id, row.device, row.resident_ref, list(row.kinds), aware(row.expires_at))
