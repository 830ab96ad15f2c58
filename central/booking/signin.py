"""Password-less sign-in for residents, and their sessions.

A request for an e-mail address of a member creates a sign-in: a one-time
link token (256 random bits, stored as SHA-256) and a 6-digit code (stored as
an HMAC under the site's key, so a copy of the database does not give the
code away). Either one, within ``sign_in_minutes`` and once, opens a
session; ``code_attempts`` wrong codes end the sign-in; a new request ends
the member's earlier ones; at most ``mails_per_hour`` requests per member
send mail. Counting a wrong code and using a sign-in are each one
conditional UPDATE: parallel requests cannot use a code twice or guess past
``code_attempts``. Whether an address belongs to a member is never revealed: the
caller shows the same page either way (:meth:`SignIns.request` returns
``None`` for an unknown address and a made-up request id).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.engine import Connection

from central.db.engine import Database, aware, utc
from central.db.tables import member_sessions, member_sign_ins, members

CODE_DIGITS = 6


@dataclass(frozen=True)
class Policy:
    sign_in_minutes: int = 15
    code_attempts: int = 5
    mails_per_hour: int = 5
    session_hours: int = 24


@dataclass(frozen=True)
class Issued:
    """A new sign-in: what the mail carries (never stored in clear)."""

    request_id: str
    member_id: str
    link_token: str
    code: str
    expires_at: datetime


class Outcome(enum.Enum):
    SIGNED_IN = "signed_in"
    WRONG_CODE = "wrong_code"  # the request stays usable
    USED = "used"  # used already, or ended by a newer request or too many wrong codes
    EXPIRED = "expired"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Session:
    member_id: str
    csrf: str
    expires_at: datetime


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class SignIns:
    def __init__(self, db: Database, key: bytes, policy: Policy = Policy()) -> None:
        self.db = db
        self.key = key
        self.policy = policy

    def _code_hash(self, request_id: str, code: str) -> str:
        message = f"booking-sign-in\0{request_id}\0{code}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def request(self, email: str, now: datetime) -> tuple[str, Issued | None]:
        """A request id for the code form, and the sign-in to mail (None: no
        active member has that address, or the mail limit is reached)."""
        request_id = secrets.token_hex(16)
        with self.db.write() as conn:
            # The member's row is locked (PostgreSQL) so parallel requests
            # count each other's mails against mails_per_hour.
            query = select(members.c.id, members.c.status).where(
                members.c.email == email.strip().lower())  # fmt: skip
            if self.db.lock_clause():
                query = query.with_for_update()
            member = conn.execute(query).first()
            if member is None or self._recent(conn, member.id, now) >= self.policy.mails_per_hour:
                return request_id, None
            conn.execute(update(member_sign_ins).where(
                member_sign_ins.c.member_id == member.id, member_sign_ins.c.used_at.is_(None),
            ).values(used_at=utc(now)))  # fmt: skip
            issued = Issued(request_id, member.id, secrets.token_urlsafe(32),
                            f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}",
                            now + timedelta(minutes=self.policy.sign_in_minutes))  # fmt: skip
            conn.execute(member_sign_ins.insert().values(
                id=request_id, member_id=member.id, link_hash=_sha256(issued.link_token),
                code_hash=self._code_hash(request_id, issued.code), created_at=utc(now),
                expires_at=utc(issued.expires_at), attempts=0))  # fmt: skip
        return request_id, issued

    def _recent(self, conn: Connection, member_id: str, now: datetime) -> int:
        count = conn.execute(select(func.count()).select_from(member_sign_ins).where(
            member_sign_ins.c.member_id == member_id,
            member_sign_ins.c.created_at > utc(now - timedelta(hours=1)))).scalar()  # fmt: skip
        return int(count or 0)

    def renew(self, link_token: str, now: datetime) -> Issued | None:
        """A fresh sign-in for the member of an old (used or expired) link."""
        with self.db.read() as conn:
            row = conn.execute(select(member_sign_ins.c.member_id, members.c.email).join(
                members, members.c.id == member_sign_ins.c.member_id).where(
                member_sign_ins.c.link_hash == _sha256(link_token))).first()  # fmt: skip
        return None if row is None else self.request(row.email, now)[1]

    def check_link(self, link_token: str, now: datetime) -> Outcome:
        """What redeeming the link would give, without redeeming it."""
        with self.db.read() as conn:
            row = conn.execute(select(member_sign_ins).where(
                member_sign_ins.c.link_hash == _sha256(link_token))).first()  # fmt: skip
        if row is None:
            return Outcome.UNKNOWN
        if row.used_at is not None:
            return Outcome.USED
        return Outcome.EXPIRED if aware(row.expires_at) <= now else Outcome.SIGNED_IN

    def redeem_link(self, link_token: str, now: datetime) -> tuple[Outcome, str | None]:
        """(outcome, session token)."""
        return self._redeem(member_sign_ins.c.link_hash == _sha256(link_token), None, now)

    def redeem_code(self, request_id: str, code: str, now: datetime) -> tuple[Outcome, str | None]:
        return self._redeem(member_sign_ins.c.id == request_id, code.strip(), now)

    def _redeem(self, which: object, code: str | None, now: datetime) -> tuple[Outcome, str | None]:
        """Each count and the use itself is one conditional UPDATE, so of
        parallel requests (several workers, PostgreSQL) exactly one uses a
        sign-in, and every wrong code is counted."""
        with self.db.read() as conn:
            row = conn.execute(select(member_sign_ins).where(which)).first()  # type: ignore[arg-type]
        if row is None:
            return Outcome.UNKNOWN, None
        if row.used_at is not None:
            return Outcome.USED, None
        if aware(row.expires_at) <= now:
            return Outcome.EXPIRED, None
        if code is not None and not hmac.compare_digest(
            self._code_hash(row.id, code), row.code_hash
        ):
            return self._wrong_code(row.id, now), None
        open_ = (member_sign_ins.c.id == row.id, member_sign_ins.c.used_at.is_(None),
                 member_sign_ins.c.expires_at > utc(now))  # fmt: skip
        with self.db.write() as conn:
            used = conn.execute(update(member_sign_ins).where(*open_).values(used_at=utc(now)))
            if not used.rowcount:  # a parallel request used or ended it first
                return Outcome.USED, None
            return Outcome.SIGNED_IN, self._open_session(conn, row.member_id, now)

    def _wrong_code(self, request_id: str, now: datetime) -> Outcome:
        """Count a wrong code in one statement; the last allowed one ends the sign-in."""
        c = member_sign_ins.c
        ends = c.attempts + 1 >= self.policy.code_attempts
        with self.db.write() as conn:
            counted = conn.execute(
                update(member_sign_ins).where(c.id == request_id, c.used_at.is_(None))
                .values(attempts=c.attempts + 1, used_at=case((ends, utc(now)), else_=None))
                .returning(c.used_at)
            ).first()  # fmt: skip
        if counted is None or counted.used_at is not None:
            return Outcome.USED
        return Outcome.WRONG_CODE

    # sessions ---------------------------------------------------------------

    def open_session(self, member_id: str, now: datetime) -> str:
        with self.db.write() as conn:
            return self._open_session(conn, member_id, now)

    def _open_session(self, conn: Connection, member_id: str, now: datetime) -> str:
        token = secrets.token_urlsafe(32)
        conn.execute(member_sessions.insert().values(
            token_hash=_sha256(token), member_id=member_id, csrf=secrets.token_urlsafe(24),
            created_at=utc(now),
            expires_at=utc(now + timedelta(hours=self.policy.session_hours))))  # fmt: skip
        return token

    def session(self, token: str, now: datetime) -> Session | None:
        with self.db.read() as conn:
            row = conn.execute(select(member_sessions).where(
                member_sessions.c.token_hash == _sha256(token))).first()  # fmt: skip
        if row is None or aware(row.expires_at) <= now:
            return None
        return Session(row.member_id, row.csrf, aware(row.expires_at))

    def close_session(self, token: str) -> None:
        with self.db.write() as conn:
            conn.execute(delete(member_sessions).where(
                member_sessions.c.token_hash == _sha256(token)))  # fmt: skip

    def purge(self, now: datetime) -> int:
        """Drop expired sessions and sign-ins older than a day."""
        with self.db.write() as conn:
            done = conn.execute(delete(member_sessions).where(
                member_sessions.c.expires_at <= utc(now))).rowcount  # fmt: skip
            done += conn.execute(delete(member_sign_ins).where(
                member_sign_ins.c.created_at <= utc(now - timedelta(days=1)))).rowcount  # fmt: skip
        return int(done or 0)
