"""Staff account management (the admin role) and one-time enrolment links.

* An admin creates an account (a random initial password and an enrolment
  link, both shown once), disables or enables it, changes its role, or resets
  its second factor (all passkeys and the TOTP secret go, sessions end, and a
  new enrolment link is shown once).
* The enrolment link (``/enrol/<token>``, 24 hours, single use) plus the
  account's password set a new TOTP secret and open a session; the staff
  member then adds a passkey under "My account". The admin hands the link
  over in person or by phone: it stands in for the second factor once.
* The last enabled admin can be neither disabled nor demoted, and nobody
  disables, demotes or resets themselves here (no lock-out by a slip). The
  admin rows are read ``FOR UPDATE`` (PostgreSQL) in the changing
  transaction, so two admins demoting each other cannot both succeed.
* Every change writes its audit entry in the same transaction as the change.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pyotp
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from central.audit import CLI_SOURCE, cli_actor, record
from central.db.engine import Database, aware, utc
from central.db.tables import staff_passkeys, staff_sessions, staff_users
from central.ops.passkeys import Challenges
from central.ops.staff import ROLES, StaffError, StaffSession, StaffStore, hash_password

log = logging.getLogger(__name__)

ENROL_TTL = timedelta(hours=24)
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")


@dataclass(frozen=True)
class StaffAccount:
    username: str
    role: str
    disabled: bool
    has_totp: bool
    passkeys: int
    created_at: datetime


@dataclass(frozen=True)
class Issued:
    """What an admin is shown once: the link token and, for a new account, the password."""

    username: str
    enrol_token: str
    password: str = ""


class StaffAdmin:
    def __init__(self, db: Database) -> None:
        self.db, self.challenges = db, Challenges(db)

    def accounts(self) -> list[StaffAccount]:
        with self.db.read() as conn:
            counts: dict[str, int] = {}
            for (name,) in conn.execute(select(staff_passkeys.c.username).where(
                    staff_passkeys.c.disabled_at.is_(None))):  # fmt: skip
                counts[name] = counts.get(name, 0) + 1
            rows = conn.execute(select(staff_users).order_by(staff_users.c.username)).all()
        return [
            StaffAccount(r.username, r.role, bool(r.disabled), bool(r.totp_secret),
                         counts.get(r.username, 0), aware(r.created_at))
            for r in rows
        ]  # fmt: skip

    def create(self, actor: str, username: str, role: str, now: datetime) -> Issued:
        if not USERNAME.match(username):
            raise StaffError("user name: 2-32 of a-z, 0-9, '.', '_', '-'", reason="bad_username")
        if role not in ROLES:
            raise StaffError(f"role must be one of {', '.join(ROLES)}", reason="bad_role")
        password = secrets.token_urlsafe(12)
        try:
            with self.db.write() as conn:
                conn.execute(insert(staff_users).values(
                    username=username, password_hash=hash_password(password), totp_secret="",
                    role=role, failed_logins=0, last_totp_step=0, created_at=utc(now),
                    disabled=False))  # fmt: skip
                record(conn, actor, "staff.create", f"staff:{username}", detail={"role": role})
                token = self.challenges.issue(username, "enrol", "", now, ttl=ENROL_TTL, conn=conn)
        except IntegrityError:
            raise StaffError(f"there is already an account {username}", reason="exists") from None
        return Issued(username, token, password)

    def set_disabled(self, actor: StaffSession, username: str, disabled: bool) -> None:
        with self.db.write() as conn:
            target = self._target(conn, actor, username)
            if disabled and target.role == "admin" and not target.disabled:
                self._keep_an_admin(conn, username)
            conn.execute(update(staff_users).where(staff_users.c.username == username)
                         .values(disabled=disabled))  # fmt: skip
            if disabled:
                conn.execute(delete(staff_sessions).where(staff_sessions.c.username == username))
            action = "staff.disable" if disabled else "staff.enable"
            record(conn, f"staff:{actor.username}", action, f"staff:{username}")

    def set_role(self, actor: StaffSession, username: str, role: str) -> None:
        if role not in ROLES:
            raise StaffError(f"role must be one of {', '.join(ROLES)}", reason="bad_role")
        with self.db.write() as conn:
            target = self._target(conn, actor, username)
            if target.role == "admin" and role != "admin" and not target.disabled:
                self._keep_an_admin(conn, username)
            conn.execute(update(staff_users).where(staff_users.c.username == username)
                         .values(role=role))  # fmt: skip
            record(conn, f"staff:{actor.username}", "staff.role", f"staff:{username}",
                   detail={"before": target.role, "after": role})  # fmt: skip

    def reset_second_factor(self, actor: StaffSession, username: str, now: datetime) -> Issued:
        """Passkeys and TOTP gone, sessions ended; a new enrolment link."""
        with self.db.write() as conn:
            self._target(conn, actor, username)
            self._reset(conn, f"staff:{actor.username}", username)
            token = self.challenges.issue(username, "enrol", "", now, ttl=ENROL_TTL, conn=conn)
            return Issued(username, token)

    def reset_from_console(self, username: str, now: datetime) -> Issued:
        """The same from the server's command line (``central staff reset``):
        the way back in when the only admin lost their second factor."""
        with self.db.write() as conn:
            if conn.execute(select(staff_users.c.username).where(
                    staff_users.c.username == username)).first() is None:  # fmt: skip
                raise StaffError(f"no account {username}", reason="unknown_account")
            self._reset(conn, cli_actor(), username, source=CLI_SOURCE)
            token = self.challenges.issue(username, "enrol", "", now, ttl=ENROL_TTL, conn=conn)
            return Issued(username, token)

    def _reset(self, conn: Any, actor: str, username: str, source: str | None = None) -> None:
        """``source``: None for the request's address (central.audit.SOURCE)."""
        removed = conn.execute(delete(staff_passkeys).where(
            staff_passkeys.c.username == username)).rowcount  # fmt: skip
        conn.execute(update(staff_users).where(staff_users.c.username == username)
                     .values(totp_secret="", last_totp_step=0))  # fmt: skip
        conn.execute(delete(staff_sessions).where(staff_sessions.c.username == username))
        self.challenges.drop_for(conn, username)
        record(conn, actor, "staff.second_factor.reset", f"staff:{username}", source=source,
               detail={"passkeys_removed": int(removed or 0)})  # fmt: skip

    def _target(self, conn: Any, actor: StaffSession, username: str) -> Any:
        if username == actor.username:
            raise StaffError("you cannot change your own account here: ask another admin",
                             reason="own_account")  # fmt: skip
        row = conn.execute(select(staff_users).where(staff_users.c.username == username)).first()
        if row is None:
            raise StaffError(f"no account {username}", reason="unknown_account")
        return row

    @staticmethod
    def _keep_an_admin(conn: Any, leaving: str) -> None:
        users = staff_users.c
        admins = conn.execute(
            select(users.username)
            .where(users.role == "admin", users.disabled.is_(False))
            .with_for_update()
        ).scalars().all()  # fmt: skip
        if not [a for a in admins if a != leaving]:
            raise StaffError("this is the last enabled admin: make another admin first",
                             reason="last_admin")  # fmt: skip


class Enrolment:
    """``/enrol/<token>``: password + the one-time link -> new TOTP secret and a session."""

    def __init__(self, db: Database, staff: StaffStore) -> None:
        self.db, self.staff, self.challenges = db, staff, Challenges(db)

    def valid(self, token: str, now: datetime) -> bool:
        return self.challenges.peek(token, "enrol", now) is not None

    def enrol(self, token: str, username: str, password: str,
              now: datetime) -> tuple[str, tuple[str, StaffSession]]:  # fmt: skip
        """(new TOTP secret, (session token, session)). The password is checked
        first (counted, lockout); the link is used up only when it is right."""
        owner = self.challenges.peek(token, "enrol", now)
        self.staff.password_step(username, password, now)  # raises on a wrong password
        if owner != username or self.challenges.take(token, "enrol", now) is None:
            raise StaffError("this enrolment link is not valid (used, expired or not yours)",
                             reason="invalid_link")  # fmt: skip
        secret = pyotp.random_base32()
        with self.db.write() as conn:
            conn.execute(update(staff_users).where(staff_users.c.username == username)
                         .values(totp_secret=secret, last_totp_step=0))  # fmt: skip
            record(conn, f"staff:{username}", "staff.enrol", f"staff:{username}")
        log.info("staff enrolled a new second factor", extra={"user": username})
        return secret, self.staff.second_factor_done(username, now)
