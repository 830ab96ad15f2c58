"""Staff sign-in for the ops dashboard: password + second factor, roles, sessions.

* The second factor is a passkey (central/ops/passkeys.py) when the account
  has one, else -- and always as the fallback -- a TOTP code. Sign-in is two
  steps then: :meth:`StaffStore.password_step`, and the passkey or
  :meth:`StaffStore.second_factor_totp`; :meth:`StaffStore.sign_in` does
  password + TOTP in one (the form with the code filled in, and the tools).

* Passwords are stored as scrypt hashes (``hashlib.scrypt``, random salt).
* The second factor is TOTP (RFC 6238, pyotp): a code is accepted once
  (its time step is taken with a conditional UPDATE, so of parallel
  sign-ins with one code exactly one wins), with one step of clock drift
  either way.
* After ``MAX_FAILURES`` sign-in attempts without a success an account is
  locked for ``LOCKOUT``; the message does not say which factor was wrong.
  The count is one atomic ``UPDATE ... SET failed_logins = failed_logins + 1
  RETURNING``: parallel wrong passwords are each counted.
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
from typing import Any

import pyotp
from sqlalchemy import and_, case, delete, insert, or_, select, update

from central.db.engine import Database, aware, now_utc, utc
from central.db.tables import staff_sessions, staff_users

ROLES = ("viewer", "operator", "admin")
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
SESSION_TTL = timedelta(hours=8)
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class StaffError(Exception):
    """Root of staff sign-in errors; ``reason`` is a short code for the audit log."""

    def __init__(self, message: str = "", *, reason: str = "invalid") -> None:
        self.reason = reason
        super().__init__(message)


class SignInFailed(StaffError):
    """Wrong user, password or code (the message deliberately does not say
    which; ``reason`` does, for the audit log only)."""

    def __init__(self, reason: str = "failed") -> None:
        # unknown_user | wrong_password | wrong_code | code_reused | disabled | locked
        super().__init__("sign-in failed", reason=reason)


class AccountDisabled(StaffError):
    """The password was right but an admin disabled the account."""

    def __init__(self, message: str = "account disabled") -> None:
        super().__init__(message, reason="disabled")


class AccountLocked(StaffError):
    """Too many failures: the account is locked until ``until``."""

    def __init__(self, until: datetime) -> None:
        self.until = until
        super().__init__(f"account locked until {until.isoformat(timespec='minutes')}",
                         reason="locked")  # fmt: skip


@dataclass(frozen=True)
class StaffSession:
    username: str
    role: str
    csrf: str
    expires_at: datetime

    def may(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True)
class SignInStep:
    """A password that was right, waiting for the second factor."""

    username: str
    role: str
    has_totp: bool


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
            raise StaffError(f"role must be one of {', '.join(ROLES)}", reason="bad_role")
        if len(password) < 12:
            raise StaffError("password must have at least 12 characters", reason="weak_password")
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
        """Check password and TOTP; returns the session token (for the cookie) and session.

        Every step that counts or consumes is one conditional statement, so
        parallel sign-ins (several workers, PostgreSQL) cannot share a read:
        the attempt is counted before the password is checked, an attempt
        past ``MAX_FAILURES`` is refused unchecked, and a TOTP step is taken
        by ``UPDATE ... WHERE last_totp_step < :step`` (one winner)."""
        attempts, row = self._first_factor(username, password, now)
        step = self._valid_step(row.totp_secret, code, now)
        if step is not None and self._take_step(username, step):
            return self._open_session(username, str(row.role), now)
        if attempts >= MAX_FAILURES:
            raise self._lock(username, now)
        raise SignInFailed("wrong_code" if step is None else "code_reused")

    def password_step(self, username: str, password: str, now: datetime) -> SignInStep:
        """The first of two steps: the password (counted like :meth:`sign_in`;
        the count is cleared only when the second factor succeeds)."""
        _, row = self._first_factor(username, password, now)
        return SignInStep(username, str(row.role), bool(row.totp_secret))

    def confirm_password(self, username: str, password: str, now: datetime) -> None:
        """Asked again before a change that would outlive the session (a new
        passkey or authenticator app), so a stolen session cookie cannot plant
        a lasting second factor. Counted like a sign-in."""
        self._first_factor(username, password, now)
        with self.db.write() as conn:
            conn.execute(update(staff_users).where(staff_users.c.username == username)
                         .values(failed_logins=0))  # fmt: skip

    def second_factor_totp(
        self, username: str, code: str, now: datetime
    ) -> tuple[str, StaffSession]:
        """The TOTP code after :meth:`password_step` (its attempt is already counted)."""
        users = staff_users.c
        with self.db.read() as conn:
            row = conn.execute(select(users.totp_secret, users.role, users.failed_logins,
                                      users.disabled)
                               .where(users.username == username)).first()  # fmt: skip
        if row is None:
            raise SignInFailed("unknown_user")
        if row.disabled:  # disabled between the two steps
            raise SignInFailed("disabled")
        totp_step = self._valid_step(row.totp_secret, code, now)
        if totp_step is not None and self._take_step(username, totp_step):
            return self._open_session(username, str(row.role), now)
        if int(row.failed_logins) >= MAX_FAILURES:
            raise self._lock(username, now)
        raise SignInFailed("wrong_code" if totp_step is None else "code_reused")

    def confirm_totp(self, username: str, code: str, now: datetime) -> None:
        """A fresh authenticator code for an action of a signed-in person (a
        remote unlock): counted like a sign-in (a stolen session cannot try
        codes for ever), the step used up; :class:`StaffError` if wrong."""
        counted = self._count_attempt(username, now)
        if counted is None:
            raise SignInFailed("unknown_user")
        attempts, locked_until, row = counted
        if locked_until is not None:
            raise AccountLocked(locked_until)
        totp_step = self._valid_step(row.totp_secret, code, now)
        if totp_step is not None and self._take_step(username, totp_step):
            return
        if attempts >= MAX_FAILURES:
            raise self._lock(username, now)
        raise SignInFailed("wrong_code" if totp_step is None else "code_reused")

    def second_factor_done(self, username: str, now: datetime) -> tuple[str, StaffSession]:
        """A passkey (or an enrolment link) proved the second factor: clear the
        count and open a session, unless the account was disabled or locked
        meanwhile."""
        users, at = staff_users.c, utc(now)
        with self.db.write() as conn:
            role = conn.execute(
                update(staff_users)
                .where(users.username == username, users.disabled.is_(False),
                       or_(users.locked_until.is_(None), users.locked_until <= at))
                .values(failed_logins=0, locked_until=None).returning(users.role)
            ).scalar_one_or_none()  # fmt: skip
        if role is None:
            raise SignInFailed(self._why_closed(username))
        return self._open_session(username, str(role), now)

    def _why_closed(self, username: str) -> str:
        """The audit reason when :meth:`second_factor_done` found the account closed."""
        with self.db.read() as conn:
            disabled = conn.execute(select(staff_users.c.disabled).where(
                staff_users.c.username == username)).scalar_one_or_none()  # fmt: skip
        return "unknown_user" if disabled is None else "disabled" if disabled else "locked"

    def _first_factor(self, username: str, password: str, now: datetime) -> tuple[int, Any]:
        counted = self._count_attempt(username, now)
        if counted is None:
            check_password(password, _DUMMY_HASH)  # same cost whether the user exists or not
            raise SignInFailed("unknown_user")
        attempts, locked_until, row = counted
        if locked_until is not None:
            raise AccountLocked(locked_until)
        if attempts > MAX_FAILURES:  # a parallel attempt reached the limit first
            raise self._lock(username, now)
        if not check_password(password, row.password_hash):
            if attempts >= MAX_FAILURES:
                raise self._lock(username, now)
            raise SignInFailed("wrong_password")
        if row.disabled:
            raise AccountDisabled("account disabled")
        return attempts, row

    def _count_attempt(
        self, username: str, now: datetime
    ) -> tuple[int, datetime | None, Any] | None:
        """Count one attempt (a lock that has run out starts the count again);
        (attempts, locked until, the account) or None for no such account."""
        users, at = staff_users.c, utc(now)
        expired = and_(users.locked_until.is_not(None), users.locked_until <= at)
        with self.db.write() as conn:
            row = conn.execute(
                update(staff_users).where(users.username == username)
                .values(failed_logins=case((expired, 1), else_=users.failed_logins + 1),
                        locked_until=case((expired, None), else_=users.locked_until))
                .returning(users.failed_logins, users.locked_until, users.password_hash,
                           users.totp_secret, users.role, users.disabled)
            ).first()  # fmt: skip
        if row is None:
            return None
        locked = aware(row.locked_until) if row.locked_until is not None else None
        return int(row.failed_logins), locked, row

    def _lock(self, username: str, now: datetime) -> AccountLocked:
        """Lock the account (once: a lock already set keeps its end)."""
        until = now + LOCKOUT
        with self.db.write() as conn:
            conn.execute(
                update(staff_users)
                .where(staff_users.c.username == username, staff_users.c.locked_until.is_(None))
                .values(locked_until=utc(until))
            )
        return AccountLocked(until)

    def _take_step(self, username: str, step: int) -> bool:
        """Use up the TOTP step; False when it (or a later one) was used already."""
        users = staff_users.c
        with self.db.write() as conn:
            taken = conn.execute(
                update(staff_users)
                .where(
                    users.username == username,
                    users.last_totp_step < step,
                    users.disabled.is_(False),
                )
                .values(failed_logins=0, locked_until=None, last_totp_step=step)
            ).rowcount
        return bool(taken)

    def _open_session(self, username: str, role: str, now: datetime) -> tuple[str, StaffSession]:
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        session = StaffSession(username, role, csrf, now + SESSION_TTL)
        with self.db.write() as conn:
            conn.execute(
                insert(staff_sessions).values(
                    token_hash=_token_hash(token), username=username, csrf=csrf,
                    created_at=utc(now), expires_at=utc(session.expires_at),
                )
            )  # fmt: skip
        return token, session

    @staticmethod
    def _valid_step(secret: str, code: str, now: datetime) -> int | None:
        if not secret or not (code.isdigit() and len(code) == 6):
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
                select(staff_sessions, staff_users.c.role, staff_users.c.disabled)
                .join(staff_users, staff_users.c.username == staff_sessions.c.username)
                .where(staff_sessions.c.token_hash == _token_hash(token))
            ).first()
        if row is None or aware(row.expires_at) <= now or row.disabled:
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

    def set_totp_secret(self, username: str, secret: str) -> None:
        """A new authenticator app (the caller checked a code of it)."""
        with self.db.write() as conn:
            conn.execute(update(staff_users).where(staff_users.c.username == username)
                         .values(totp_secret=secret, last_totp_step=0))  # fmt: skip

    def has_totp(self, username: str) -> bool:
        with self.db.read() as conn:
            secret = conn.execute(
                select(staff_users.c.totp_secret).where(staff_users.c.username == username)
            ).scalar_one_or_none()
        return bool(secret)
