"""API bearer tokens: random, shown once, stored only as SHA-256.

Roles, each including the ones before it: ``reader`` (GET), ``operator``
(+ reservation changes, device registration), ``admin`` (everything).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any, Literal

from sqlalchemy import select, update

from central.db.engine import Database, now_utc
from central.db.tables import api_tokens
from central.errors import NotFoundError

Role = Literal["reader", "operator", "admin"]
ROLES: tuple[Role, ...] = ("reader", "operator", "admin")
PREFIX = "ck_"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def role_allows(have: str, need: str) -> bool:
    return have in ROLES and ROLES.index(have) >= ROLES.index(need)


class TokenStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, role: Role, name: str = "") -> tuple[str, str]:
        """A new token: returns (token id, the token itself -- shown only now)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        token_id = secrets.token_hex(4)
        token = PREFIX + secrets.token_urlsafe(32)
        with self.db.write() as conn:
            conn.execute(api_tokens.insert().values(
                id=token_id, name=name, role=role, token_hash=token_hash(token),
                created_at=now_utc()))  # fmt: skip
        return token_id, token

    def verify(self, token: str) -> str | None:
        """The role of a valid, unrevoked token, else None."""
        found = self.holder(token)
        return found[1] if found else None

    def holder(self, token: str) -> tuple[str, str] | None:
        """(token id, role) of a valid, unrevoked token, else None."""
        digest = token_hash(token)
        with self.db.read() as conn:
            row = conn.execute(
                select(api_tokens.c.id, api_tokens.c.role, api_tokens.c.token_hash).where(
                    api_tokens.c.token_hash == digest, api_tokens.c.revoked_at.is_(None)
                )
            ).first()
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            return None
        return str(row.id), str(row.role)

    def list_tokens(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(api_tokens.c.id, api_tokens.c.name, api_tokens.c.role,
                       api_tokens.c.created_at, api_tokens.c.revoked_at)
                .order_by(api_tokens.c.created_at)
            )  # fmt: skip
            return [dict(r._mapping) for r in rows]

    def revoke(self, token_id: str) -> None:
        with self.db.write() as conn:
            result = conn.execute(
                update(api_tokens).where(api_tokens.c.id == token_id).values(revoked_at=now_utc())
            )
        if not result.rowcount:
            raise NotFoundError(f"no token {token_id!r}")
