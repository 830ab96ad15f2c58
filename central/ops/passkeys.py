"""Staff passkeys (WebAuthn) with py_webauthn: the relying party, pending
single-use challenges, registering a passkey and signing in with one.

* Relying party: the RP id is the host of ``api.public_url`` and the one
  accepted origin its ``scheme://host[:port]``. A passkey made for another
  site (another RP id, so another RP id hash) or an answer from a page of
  another origin (phishing) fails py_webauthn's checks and is refused.
* User verification is *required* (PIN or biometrics on the authenticator):
  a passkey then stands for "something you have" and "something you are or
  know", and a stolen security key alone signs nobody in.
* Clone detection: py_webauthn is asked to verify with a stored count of 0
  (its own counter check runs before the signature check); the counter is
  compared here, after the signature has proved the answer came from the
  credential's key, with one conditional ``UPDATE`` (parallel replays: one
  winner). A counter that did not increase means two authenticators hold
  the key: the credential is disabled for good, the staff member is told and
  the audit trail and the log say so. Authenticators that never count
  (always 0) are accepted, as the standard allows.
* Challenges are 32 random bytes kept in ``staff_challenges`` (shared by all
  workers), used by ``DELETE ... RETURNING`` (single use) and expire after
  ``CHALLENGE_TTL``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, insert, select, update
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from central.audit import record
from central.db.engine import Database, aware, utc
from central.db.tables import staff_challenges, staff_passkeys, staff_users

log = logging.getLogger(__name__)

CHALLENGE_TTL = timedelta(minutes=5)
RP_NAME = "City kiosk ops"
MAX_PASSKEYS = 10  # per staff member


class PasskeyError(Exception):
    """Root of passkey errors; ``str()`` is safe to show the staff member,
    ``reason`` is a short code for the audit log, ``username`` the account
    when it is known (the caller records the refusal)."""

    def __init__(self, message: str, *, reason: str = "invalid", username: str = "") -> None:
        self.reason, self.username = reason, username
        super().__init__(message)


class PasskeyRefused(PasskeyError):
    """The answer failed a check (wrong site, expired, bad signature, ...)."""


class ClonedAuthenticator(PasskeyRefused):
    """The signature counter did not increase: the credential is now disabled."""


@dataclass(frozen=True)
class RelyingParty:
    rp_id: str
    origin: str

    @classmethod
    def from_public_url(cls, public_url: str) -> RelyingParty | None:
        """``https://ops.example.jp:8443/x`` -> RP id ``ops.example.jp``, origin
        ``https://ops.example.jp:8443``; None without a public address or
        when its host is an IP address."""
        if not public_url:
            return None
        parts = urlsplit(public_url)
        if not parts.hostname or _is_ip(parts.hostname):
            return None  # browsers accept only a domain name as RP id
        return cls(parts.hostname, f"{parts.scheme}://{parts.netloc}")


@dataclass(frozen=True)
class Passkey:
    credential_id: str
    label: str
    created_at: datetime
    last_used_at: datetime | None
    disabled: bool


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Challenges:
    """Pending single-use steps, named by a random token (cookie or link)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def issue(self, username: str, purpose: str, challenge: str, now: datetime, *,
              ttl: timedelta = CHALLENGE_TTL, conn: Any = None) -> str:  # fmt: skip
        """A new step; in ``conn``'s transaction when given (with the change it belongs to)."""
        token = secrets.token_urlsafe(32)
        if conn is None:
            with self.db.write() as own:
                return self.issue(username, purpose, challenge, now, ttl=ttl, conn=own)
        conn.execute(delete(staff_challenges).where(staff_challenges.c.expires_at <= utc(now)))
        conn.execute(insert(staff_challenges).values(
            token_hash=_hash(token), username=username, purpose=purpose,
            challenge=challenge, expires_at=utc(now + ttl)))  # fmt: skip
        return token

    def peek(self, token: str, purpose: str, now: datetime) -> str | None:
        """The username of a live step (without using it)."""
        c = staff_challenges.c
        with self.db.read() as conn:
            row = conn.execute(select(c.username, c.expires_at).where(
                c.token_hash == _hash(token), c.purpose == purpose)).first()  # fmt: skip
        return row.username if row and aware(row.expires_at) > now else None

    def take(self, token: str, purpose: str, now: datetime) -> tuple[str, str] | None:
        """Use the step up: (username, challenge), or None (unknown, used, expired)."""
        c = staff_challenges.c
        with self.db.write() as conn:
            row = conn.execute(
                delete(staff_challenges)
                .where(c.token_hash == _hash(token), c.purpose == purpose)
                .returning(c.username, c.challenge, c.expires_at)
            ).first()
        if row is None or aware(row.expires_at) <= now:
            return None
        return str(row.username), str(row.challenge)

    def drop_for(self, conn: Any, username: str) -> None:
        conn.execute(delete(staff_challenges).where(staff_challenges.c.username == username))


class PasskeyStore:
    def __init__(self, db: Database, rp: RelyingParty) -> None:
        self.db, self.rp, self.challenges = db, rp, Challenges(db)

    # -- reading ------------------------------------------------------------

    def passkeys(self, username: str) -> list[Passkey]:
        k = staff_passkeys.c
        with self.db.read() as conn:
            rows = conn.execute(select(staff_passkeys).where(k.username == username)
                                .order_by(k.created_at)).all()  # fmt: skip
        return [Passkey(r.credential_id, r.label, aware(r.created_at),
                        aware(r.last_used_at) if r.last_used_at else None,
                        r.disabled_at is not None) for r in rows]  # fmt: skip

    def usable_count(self, username: str) -> int:
        return sum(1 for p in self.passkeys(username) if not p.disabled)

    def _descriptors(self, username: str) -> list[PublicKeyCredentialDescriptor]:
        k = staff_passkeys.c
        with self.db.read() as conn:
            rows = conn.execute(select(k.credential_id, k.transports).where(
                k.username == username, k.disabled_at.is_(None))).all()  # fmt: skip
        return [PublicKeyCredentialDescriptor(
            id=base64url_to_bytes(r.credential_id),
            transports=[AuthenticatorTransport(t) for t in r.transports.split(",") if t
                        and t in AuthenticatorTransport._value2member_map_])
            for r in rows]  # fmt: skip

    # -- registering ----------------------------------------------------------

    def registration_options(self, username: str, now: datetime) -> tuple[str, str]:
        """(pending token, options JSON for navigator.credentials.create())."""
        challenge = secrets.token_bytes(32)
        options = generate_registration_options(
            rp_id=self.rp.rp_id, rp_name=RP_NAME, user_name=username,
            user_id=hashlib.sha256(f"staff:{username}".encode()).digest()[:32],
            challenge=challenge, exclude_credentials=self._descriptors(username),
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.PREFERRED,
                user_verification=UserVerificationRequirement.REQUIRED),
        )  # fmt: skip
        token = self.challenges.issue(username, "register", bytes_to_base64url(challenge), now)
        return token, options_to_json(options)

    def register(self, username: str, token: str, credential: str, label: str,
                 now: datetime) -> str:  # fmt: skip
        """Verify the create() answer and store the passkey; its credential id."""
        label = label.strip()[:64] or "passkey"
        taken = self.challenges.take(token, "register", now)
        if taken is None or taken[0] != username:
            self._refused(username, "register", "challenge expired or used")
            raise PasskeyRefused("The request expired. Please try again.", reason="expired",
                                 username=username)  # fmt: skip
        try:
            verified = verify_registration_response(
                credential=credential, expected_challenge=base64url_to_bytes(taken[1]),
                expected_rp_id=self.rp.rp_id, expected_origin=self.rp.origin,
                require_user_verification=True,
            )  # fmt: skip
        except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
            raise self._not_accepted(username, "register", exc) from exc
        credential_id = bytes_to_base64url(verified.credential_id)
        with self.db.write() as conn:
            count = conn.execute(select(func.count()).select_from(staff_passkeys).where(
                staff_passkeys.c.username == username)).scalar_one()  # fmt: skip
            known = conn.execute(select(staff_passkeys.c.username).where(
                staff_passkeys.c.credential_id == credential_id)).first()  # fmt: skip
            if count >= MAX_PASSKEYS or known is not None:
                raise PasskeyRefused(
                    "This passkey is already registered, or there are too many.",
                    reason="known_or_too_many",
                    username=username,
                )
            conn.execute(insert(staff_passkeys).values(
                credential_id=credential_id, username=username,
                public_key=verified.credential_public_key, sign_count=verified.sign_count,
                transports=",".join(_transports(credential)), label=label,
                created_at=utc(now)))  # fmt: skip
            record(conn, f"staff:{username}", "staff.passkey.register", f"staff:{username}",
                   detail={"credential_id": credential_id[:16], "label": label})  # fmt: skip
        log.info("staff passkey registered", extra={"user": username, "label": label})
        return credential_id

    def remove(self, username: str, credential_id: str, actor: str) -> None:
        """Remove a passkey; refused when it is the account's last second factor."""
        k = staff_passkeys.c
        with self.db.write() as conn:
            has_totp = conn.execute(select(staff_users.c.totp_secret).where(
                staff_users.c.username == username)).scalar_one_or_none()  # fmt: skip
            others = conn.execute(select(func.count()).select_from(staff_passkeys).where(
                k.username == username, k.credential_id != credential_id,
                k.disabled_at.is_(None))).scalar_one()  # fmt: skip
            if not has_totp and others == 0:
                raise PasskeyError(
                    "This is your last second factor: add another one first.",
                    reason="last_second_factor",
                    username=username,
                )
            gone = conn.execute(delete(staff_passkeys).where(
                k.username == username, k.credential_id == credential_id)).rowcount  # fmt: skip
            if not gone:
                raise PasskeyError("No such passkey.", reason="unknown_credential",
                                   username=username)  # fmt: skip
            record(conn, actor, "staff.passkey.remove", f"staff:{username}",
                   detail={"credential_id": credential_id[:16]})  # fmt: skip

    # -- signing in -------------------------------------------------------------

    def authentication_options(self, username: str, now: datetime,
                               purpose: str = "signin") -> tuple[str, str]:  # fmt: skip
        """(pending token, options JSON for navigator.credentials.get());
        ``purpose`` "command": a fresh assertion confirming a remote command,
        which can never be used to sign in (and the reverse)."""
        challenge = secrets.token_bytes(32)
        options = generate_authentication_options(
            rp_id=self.rp.rp_id, challenge=challenge,
            allow_credentials=self._descriptors(username),
            user_verification=UserVerificationRequirement.REQUIRED,
        )  # fmt: skip
        token = self.challenges.issue(username, purpose, bytes_to_base64url(challenge), now)
        return token, options_to_json(options)

    def authenticate(self, token: str, credential: str, now: datetime,
                     purpose: str = "signin") -> str:  # fmt: skip
        """Verify the get() answer against the pending step; the username."""
        taken = self.challenges.take(token, purpose, now)
        if taken is None:
            raise PasskeyRefused("The sign-in expired. Please start again.", reason="expired")
        username, challenge = taken
        try:
            credential_id = str(json.loads(credential)["id"])
        except (ValueError, KeyError, TypeError):
            self._refused(username, "signin", "malformed answer")
            raise PasskeyRefused(
                "The passkey answer was not understood.", reason="malformed", username=username
            ) from None
        k = staff_passkeys.c
        with self.db.read() as conn:
            row = conn.execute(select(staff_passkeys).where(
                k.credential_id == credential_id, k.username == username)).first()  # fmt: skip
        if row is None or row.disabled_at is not None:
            self._refused(username, "signin", "unknown or disabled credential")
            raise PasskeyRefused(
                "This passkey is not registered to this account or is disabled.",
                reason="unknown_credential",
                username=username,
            )
        try:
            verified = verify_authentication_response(
                credential=credential, expected_challenge=base64url_to_bytes(challenge),
                expected_rp_id=self.rp.rp_id, expected_origin=self.rp.origin,
                credential_public_key=row.public_key, credential_current_sign_count=0,
                require_user_verification=True,
            )  # fmt: skip
        except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
            raise self._not_accepted(username, "signin", exc) from exc
        self._advance_counter(username, credential_id, verified.new_sign_count, now)
        return username

    def _not_accepted(self, username: str, step: str, exc: Exception) -> PasskeyRefused:
        """py_webauthn refused the answer: logged with its text (which may quote
        the other site's origin), refused with a short reason code."""
        self._refused(username, step, str(exc)[:200])
        return PasskeyRefused("The passkey was not accepted for this site.",
                              reason=refusal_reason(exc), username=username)  # fmt: skip

    def _advance_counter(self, username: str, credential_id: str, count: int,
                         now: datetime) -> None:  # fmt: skip
        """Store the new counter, or disable the credential when it did not grow."""
        k = staff_passkeys.c
        grows = k.sign_count < count if count > 0 else k.sign_count == 0
        with self.db.write() as conn:
            moved = conn.execute(
                update(staff_passkeys)
                .where(k.credential_id == credential_id, k.disabled_at.is_(None), grows)
                .values(sign_count=count, last_used_at=utc(now))
            ).rowcount
            if moved:
                return
            conn.execute(update(staff_passkeys).where(k.credential_id == credential_id)
                         .values(disabled_at=utc(now)))  # fmt: skip
            # The system disables it, in the sign-in attempt of the person who holds it.
            record(conn, f"staff:{username}", "staff.passkey.disable", f"staff:{username}",
                   reason="cloned", detail={"credential_id": credential_id[:16],
                                            "sign_count": count})  # fmt: skip
        log.error("staff passkey counter did not increase: credential disabled (cloned?)",
                  extra={"user": username, "credential": credential_id[:16],
                         "count": count})  # fmt: skip
        raise ClonedAuthenticator(
            "This passkey looks copied (its counter went back), so it has been disabled. "
            "Sign in with your authenticator code and tell an administrator.",
            reason="cloned", username=username,
        )  # fmt: skip

    @staticmethod
    def _refused(username: str, step: str, reason: str) -> None:
        """The log line of a refusal (the caller writes the audit entry, with
        the exception's ``reason``: one entry per attempt)."""
        log.warning("staff passkey refused", extra={"user": username, "step": step,
                                                     "reason": reason})  # fmt: skip


# py_webauthn's messages -> the audit log's reason codes (the message itself
# may quote what the other side sent, an origin: it goes to the log only).
_REASONS = (("rp id hash", "other_site"), ("origin", "other_origin"),
            ("challenge", "wrong_challenge"), ("verif", "no_user_verification"),
            ("present", "no_user_presence"), ("signature", "bad_signature"))  # fmt: skip


def refusal_reason(exc: Exception) -> str:
    message = str(exc).lower()
    if "signature" in message and "verif" in message:  # "could not verify ... signature"
        return "bad_signature"
    return next((code for words, code in _REASONS if words in message), "malformed")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _transports(credential: str) -> list[str]:
    try:
        found = json.loads(credential).get("response", {}).get("transports", [])
    except (ValueError, AttributeError):
        return []
    return [t for t in found if isinstance(t, str) and t.isalnum() and len(t) <= 16][:6]
