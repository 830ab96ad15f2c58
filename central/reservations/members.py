"""Facility members and their cards: create, update and suspend members, look
them up, list and revoke cards, issue one-time enrolment codes.

A member's display name and e-mail address are stored for staff and
confirmations and never logged; audit entries name members by id. Enrolling
(:mod:`central.reservations.enrolment`) or revoking a card re-publishes every
booking of the member not over yet in the same transaction, so the door
devices drop a revoked card at their next delta (seconds while online).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from central.db.engine import Database, aware, now_utc, utc
from central.db.tables import enrolment_codes, member_cards, members
from central.errors import ConflictError, NotFoundError
from central.reservations import audit
from central.reservations import booking_rows as rows
from central.reservations.store import ReservationStore
from contracts.enrolment import Language

ENROLMENT_CODE_DIGITS = 8
# Enrolment codes are hashed with the fleet's code key (central's
# reservations.code_key_file) asked for this pseudo-facility.
ENROLMENT_KEY_SCOPE = "enrolment"
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
Clock = Callable[[], datetime]
MemberStatus = Literal["active", "suspended"]


class MemberIn(BaseModel):
    """A member as staff or an import give it (the e-mail is stored lower-cased)."""

    model_config = ConfigDict(extra="forbid")
    display_name: str = Field(min_length=1, max_length=100, pattern=r"^[^\r\n]+$")
    email: str = Field(max_length=254)
    language: Language = "ja"
    external_number: str | None = Field(default=None, min_length=1, max_length=64)
    status: MemberStatus = "active"

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        value = value.strip().lower()
        if not EMAIL.match(value):
            raise ValueError("not an e-mail address")
        return value


@dataclass(frozen=True)
class Member:
    id: str
    external_number: str | None
    display_name: str
    email: str
    language: str
    status: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Card:
    id: str
    member_id: str
    credential_ref: str
    kind: str
    label: str
    status: str
    enrolled_at: datetime
    enrolled_by: str
    revoked_at: datetime | None
    revoked_by: str | None


@dataclass(frozen=True)
class IssuedCode:
    code: str  # shown once to the member
    expires_at: datetime


def enrolment_code_hash(key: bytes, code: str) -> str:
    """Keyed: 10^8 codes under a plain hash are reversed in seconds."""
    return hmac.new(key, f"enrolment:{code}".encode(), hashlib.sha256).hexdigest()


def member_of(row: Row[Any]) -> Member:
    return Member(row.id, row.external_number, row.display_name, row.email, row.language,
                  row.status, aware(row.created_at), aware(row.updated_at))  # fmt: skip


def card_of(row: Row[Any]) -> Card:
    return Card(row.id, row.member_id, row.credential_ref, row.kind, row.label, row.status,
                aware(row.enrolled_at), row.enrolled_by,
                aware(row.revoked_at) if row.revoked_at else None, row.revoked_by)  # fmt: skip


def get_member(conn: Connection, member_id: str, *, lock: bool = False) -> Row[Any]:
    query = select(members).where(members.c.id == member_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise NotFoundError(f"no member {member_id!r}")
    return row


def _taken(exc: IntegrityError) -> ConflictError:
    text = str(exc.orig).lower()
    what = "external number" if "external_number" in text else "e-mail address"
    return ConflictError(f"another member has this {what}")


class MemberService:
    def __init__(
        self, db: Database, store: ReservationStore, enrolment_key: bytes, *,
        code_minutes: int = 30,
    ) -> None:  # fmt: skip
        self.db = db
        self.store = store
        self.enrolment_key = enrolment_key
        self.code_minutes = code_minutes

    # members ----------------------------------------------------------------

    def create(self, member: MemberIn, actor: str) -> Member:
        member_id, now = uuid_hex(), now_utc()
        try:
            with self.db.write() as conn:
                conn.execute(
                    members.insert().values(
                        id=member_id, created_at=now, updated_at=now, **member.model_dump()
                    )
                )
                audit.record(conn, actor, "member.created", f"member:{member_id}",
                             status=member.status)  # fmt: skip
        except IntegrityError as exc:
            raise _taken(exc) from None
        return self.get(member_id)

    def update(self, member_id: str, fields: dict[str, Any], actor: str) -> Member:
        """Change some fields (validated as :class:`MemberIn`); the audit entry
        names the fields changed, not their values."""
        try:
            with self.db.write() as conn:
                current = member_of(get_member(conn, member_id, lock=True))
                base = {k: getattr(current, k) for k in MemberIn.model_fields}
                merged = MemberIn.model_validate({**base, **fields}).model_dump()
                changed = sorted(k for k in merged if merged[k] != base[k])
                if changed:
                    conn.execute(update(members).where(members.c.id == member_id)
                                 .values(**merged, updated_at=now_utc()))  # fmt: skip
                    audit.record(conn, actor, "member.updated", f"member:{member_id}",
                                 fields=changed, status=merged["status"])  # fmt: skip
        except IntegrityError as exc:
            raise _taken(exc) from None
        return self.get(member_id)

    def set_status(self, member_id: str, status: MemberStatus, actor: str) -> Member:
        return self.update(member_id, {"status": status}, actor)

    def get(self, member_id: str) -> Member:
        with self.db.read() as conn:
            return member_of(get_member(conn, member_id))

    def find(self, *, email: str | None = None, external_number: str | None = None) -> Member:
        query = select(members)
        if email:
            query = query.where(members.c.email == email.strip().lower())
        elif external_number:
            query = query.where(members.c.external_number == external_number)
        else:
            raise ConflictError("give an e-mail address or an external number")
        with self.db.read() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFoundError("no member with that e-mail address or number")
        return member_of(row)

    def search(self, query: str, limit: int = 50) -> list[Member]:
        """Staff look-up: an e-mail address or external number exactly, else
        members whose display name starts with ``query`` (case-insensitive)."""
        query = query.strip()
        if not query:
            return []
        name = func.lower(members.c.display_name).startswith(query.lower(), autoescape=True)
        where = or_(members.c.email == query.lower(), members.c.external_number == query, name)
        with self.db.read() as conn:
            order = (members.c.display_name, members.c.id)
            found = conn.execute(select(members).where(where).order_by(*order).limit(limit))
            return [member_of(r) for r in found]

    def list_members(self, *, after: str = "", limit: int = 100) -> list[Member]:
        with self.db.read() as conn:
            found = conn.execute(select(members).where(members.c.id > after)
                                 .order_by(members.c.id).limit(limit))  # fmt: skip
            return [member_of(r) for r in found]

    # cards ------------------------------------------------------------------

    def cards(self, member_id: str) -> list[Card]:
        with self.db.read() as conn:
            get_member(conn, member_id)
            found = conn.execute(
                select(member_cards)
                .where(member_cards.c.member_id == member_id)
                .order_by(member_cards.c.enrolled_at, member_cards.c.id)
            )
            return [card_of(r) for r in found]

    def revoke_card(self, member_id: str, card_id: str, actor: str) -> Card:
        """Revoke a card and re-publish the member's bookings without it."""

        def body(conn: Connection) -> Card:
            get_member(conn, member_id, lock=True)
            row = conn.execute(
                select(member_cards).where(
                    member_cards.c.id == card_id, member_cards.c.member_id == member_id
                )
            ).first()
            if row is None:
                raise NotFoundError(f"member {member_id!r} has no card {card_id!r}")
            if row.status != "active":
                return card_of(row)
            conn.execute(
                update(member_cards)
                .where(member_cards.c.id == card_id)
                .values(status="revoked", revoked_at=now_utc(), revoked_by=actor)
            )
            deltas = rows.republish_member(conn, self.store, member_id)
            # The versions that carry the revocation: a device of the facility
            # below it still lets the card in (the revocation window).
            audit.record(conn, actor, "card.revoked", f"card:{card_id}", member=member_id,
                         republished=sum(len(d.changes) for d in deltas),
                         versions={d.facility: d.version for d in deltas})  # fmt: skip
            return card_of(conn.execute(
                select(member_cards).where(member_cards.c.id == card_id)).one())  # fmt: skip

        return rows.transaction(self.db, "revoking a card", body)

    # enrolment codes --------------------------------------------------------

    def issue_code(self, member_id: str, actor: str, now: datetime) -> IssuedCode:
        """A one-time 8-digit code for enrolling a card at a device, valid for
        ``code_minutes``; earlier unused codes of the member stop working."""
        expires = now + timedelta(minutes=self.code_minutes)

        def body(conn: Connection) -> IssuedCode:
            if get_member(conn, member_id, lock=True).status != "active":
                raise ConflictError("the member is suspended")
            conn.execute(update(enrolment_codes).where(
                enrolment_codes.c.member_id == member_id, enrolment_codes.c.used_at.is_(None),
                enrolment_codes.c.expires_at > utc(now)).values(expires_at=utc(now)))  # fmt: skip
            code = self._fresh_code(conn, now)
            code_id = uuid_hex()
            conn.execute(enrolment_codes.insert().values(
                id=code_id, code_hash=enrolment_code_hash(self.enrolment_key, code),
                member_id=member_id, issued_by=actor, created_at=utc(now),
                expires_at=utc(expires), attempts=0))  # fmt: skip
            audit.record(conn, actor, "enrolment_code.issued", f"member:{member_id}",
                         code_id=code_id, expires_at=expires.isoformat())  # fmt: skip
            return IssuedCode(code, expires)

        return rows.transaction(self.db, "issuing an enrolment code", body)

    def _fresh_code(self, conn: Connection, now: datetime) -> str:
        """A code no other live code has (a clash would redeem the wrong member)."""
        while True:
            code = f"{secrets.randbelow(10**ENROLMENT_CODE_DIGITS):0{ENROLMENT_CODE_DIGITS}d}"
            clash = conn.execute(select(enrolment_codes.c.id).where(
                enrolment_codes.c.code_hash == enrolment_code_hash(self.enrolment_key, code),
                enrolment_codes.c.used_at.is_(None),
                enrolment_codes.c.expires_at > utc(now))).first()  # fmt: skip
            if clash is None:
                return code


def uuid_hex() -> str:
    return secrets.token_hex(16)
