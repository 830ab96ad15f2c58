"""Staff sign-in for the ops dashboard: password + TOTP, roles, sessions.

* Passwords are stored as scrypt hashes (``hashlib.scrypt``, random salt).
* The second factor is TOTP (RFC 6238, pyotp): a code is accepted once
  (its time step is remembered), with one step of clock drift either way.
* After ``MAX_FAILURES`` wrong sign-ins in a row an account is locked for
  ``LOCKOUT``; the message does not say which factor was wrong.
* Sessions are random tokens (only their SHA-256 is stored) that expire
  after ``SESSION_TTL``; each carries a CSRF token that every form posts back.
* Roles: ``viewer`` reads, ``operator`` also acknowledges alerts, ``admin``
  also manages staff.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from central.db.engine import Database, aware, now_utc, utc
from central.db.tables import staff_sessions, staff_users

ROLES = ("viewer", "operator", "admin")
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
SESSION_TTL = timedelta(hours=8)
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class StaffError(Exception):
    """Root of staff sign-in errors."""


class SignInFailed(StaffError):
    """Wrong user, password or code (deliberately not saying which)."""


class AccountLocked(StaffError):
    """Too many failures: the account is locked until ``until``."""

    def __init__(self, until: datetime) -> None:
        self.until = until
        super().__init__(f"account locked until {until.isoformat(timespec='minutes')}")


@dataclass(frozen=True)
class StaffSession:
    username: str
    role: str
    csrf: str
    expires_at: datetime

    def may(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        computed = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p)
        )
    except ValueError:
        return False
    return hmac.compare_digest(computed.hex(), digest)


_DUMMY_HASH = hash_password("not-a-real-account")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class StaffStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, username: str, password: str, role: str) -> str:
        """Create an account; returns its TOTP secret (shown once, for the app)."""
        if role not in ROLES:
            raise StaffError(f"role must be one of {', '.join(ROLES)}")
        if len(password) < 12:
            raise StaffError("password must have at least 12 characters")
        secret = pyotp.random_base32()
        with self.db.write() as conn:
            conn.execute(
                insert(staff_users).values(
                    username=username, password_hash=hash_password(password), totp_secret=secret,
                    role=role, failed_logins=0, last_totp_step=0, created_at=now_utc(),
                )
            )  # fmt: skip
        return secret

    def sign_in(
        self, username: str, password: str, code: str, now: datetime
    ) -> tuple[str, StaffSession]:
        """Check password and TOTP; returns the session token (for the cookie) and session."""
        # Failures are committed before raising: the counter must survive.
        with self.db.write() as conn:
            outcome = self._check(conn, username, password, code, now)
            if isinstance(outcome, StaffError):
                failure = outcome
            else:
                token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
                session = StaffSession(username, outcome, csrf, now + SESSION_TTL)
                conn.execute(
                    insert(staff_sessions).values(
                        token_hash=_token_hash(token), username=username, csrf=csrf,
                        created_at=utc(now), expires_at=utc(session.expires_at),
                    )
                )  # fmt: skip
                return token, session
        raise failure

    def _check(self, conn: Connection, username: str, password: str, code: str,
               now: datetime) -> str | StaffError:  # fmt: skip
        """The account's role, or the error to raise (after the commit)."""
        row = conn.execute(select(staff_users).where(staff_users.c.username == username)).first()
        if row is None:
            check_password(password, _DUMMY_HASH)  # same cost whether the user exists or not
            return SignInFailed("sign-in failed")
        if row.locked_until is not None and aware(row.locked_until) > now:
            return AccountLocked(aware(row.locked_until))
        step = self._valid_step(row.totp_secret, code, now)
        this_user = staff_users.c.username == username
        if (
            not check_password(password, row.password_hash)
            or step is None
            or step <= row.last_totp_step
        ):
            failures = row.failed_logins + 1
            locked = now + LOCKOUT if failures >= MAX_FAILURES else None
            conn.execute(
                update(staff_users)
                .where(this_user)
                .values(
                    failed_logins=0 if locked else failures,
                    locked_until=utc(locked) if locked else None,
                )
            )
            return AccountLocked(locked) if locked else SignInFailed("sign-in failed")
        conn.execute(
            update(staff_users).where(this_user)
            .values(failed_logins=0, locked_until=None, last_totp_step=step)
        )  # fmt: skip
        return str(row.role)

    @staticmethod
    def _valid_step(secret: str, code: str, now: datetime) -> int | None:
        if not (code.isdigit() and len(code) == 6):
            return None
        totp = pyotp.TOTP(secret)
        step = int(now.timestamp()) // totp.interval
        for candidate in (step - 1, step, step + 1):
            if hmac.compare_digest(totp.at(candidate * totp.interval), code):
                return candidate
        return None

    def session(self, token: str, now: datetime) -> StaffSession | None:
        with self.db.read() as conn:
            row = conn.execute(
                select(staff_sessions, staff_users.c.role)
                .join(staff_users, staff_users.c.username == staff_sessions.c.username)
                .where(staff_sessions.c.token_hash == _token_hash(token))
            ).first()
        if row is None or aware(row.expires_at) <= now:
            return None
        return StaffSession(row.username, row.role, row.csrf, aware(row.expires_at))

    def sign_out(self, token: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                delete(staff_sessions).where(staff_sessions.c.token_hash == _token_hash(token))
            )

    def purge_expired(self, now: datetime) -> int:
        with self.db.write() as conn:
            result = conn.execute(
                delete(staff_sessions).where(staff_sessions.c.expires_at <= utc(now))
            )
            return int(result.rowcount or 0)
