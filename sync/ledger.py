"""The device's command ledger: remote commands between the process that
receives them (the sync agent) and the process that runs them.

The agent verifies a command (:func:`contracts.commands.verify`) and puts it
here with :meth:`CommandLedger.receive`; the id is the table's primary key,
so a command that arrives twice is taken once. The process named by its
target (lockctl for doors, the touchscreen for a screenshot, the agent for
the rest) takes its commands with :meth:`CommandLedger.claim`, verifies the
signed body again itself (the store is shared: a process never trusts a
command only because it is in the table), runs it and records the outcome
with :meth:`CommandLedger.finish`. The agent reports every finished command
to central (:meth:`unreported`, :meth:`mark_reported`) and forgets it once
it has expired and been reported (:meth:`prune`).

A command that sits unclaimed past its expiry (its process is down) is
finished as ``expired`` by :meth:`expire_unclaimed`, never run late.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from contracts.commands import key_id
from sync.errors import ConfigError
from sync.store import Store

Target = Literal["agent", "lockctl", "kiosk"]
FinalState = Literal["done", "failed", "refused", "expired"]
# How long a reported command's id is kept after its expiry: a replay of it
# is refused as expired by its signature's time anyway, this is the margin
# for a device clock that was stepped back.
KEEP_AFTER_EXPIRY_SECONDS = 24 * 3600.0


def load_command_keys(path: Path | None) -> dict[str, Ed25519PublicKey]:
    """Central's command public key(s) by key id, from ``commands.public_key_file``
    (a PEM file of one or more Ed25519 public keys: two during a key change).
    None: no key, so every command is refused as ``unknown_key``."""
    if path is None:
        return {}
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), [f"commands.public_key_file: {exc.strerror}"]) from None
    keys: dict[str, Ed25519PublicKey] = {}
    marker = b"-----END PUBLIC KEY-----"
    for block in text.split(marker)[:-1]:
        try:
            key = load_pem_public_key(block + marker)
        except ValueError:
            raise ConfigError(
                str(path), ["commands.public_key_file: not a PEM public key"]
            ) from None
        if not isinstance(key, Ed25519PublicKey):
            raise ConfigError(str(path), ["commands.public_key_file: not an Ed25519 key"])
        keys[key_id(key)] = key
    if not keys:
        raise ConfigError(str(path), ["commands.public_key_file: no public key in it"])
    return keys


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: str
    name: str
    target: Target
    body: bytes
    state: str
    code: str
    message: str
    detail: dict[str, Any]
    attachment: bytes | None
    expires: float
    received: float
    finished: float | None


class CommandLedger:
    """The ``commands`` table of the device store (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def receive(
        self, command_id: str, name: str, target: Target, body: bytes, *, expires: float, now: float
    ) -> bool:
        """Take a verified command; False when its id is already here (a
        replay or a redelivery: it never runs twice)."""
        with self.store.write() as conn:
            cursor = conn.execute(
                "INSERT INTO commands (id, name, target, body, expires, received)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                (command_id, name, target, body, expires, now),
            )
            return cursor.rowcount == 1

    def record_refusal(
        self,
        command_id: str,
        name: str,
        body: bytes,
        *,
        code: str,
        message: str,
        now: float,
        state: Literal["refused", "expired"] = "refused",
    ) -> bool:
        """Keep a refused command (by the agent, before any process took it)
        so its result is reported like every other; False if the id exists.
        ``state`` expired: it arrived after its expiry (the contract's
        ``expired`` result), else refused."""
        with self.store.write() as conn:
            cursor = conn.execute(
                "INSERT INTO commands (id, name, target, body, state, code, message, expires,"
                " received, finished) VALUES (?, ?, 'agent', ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO NOTHING",
                (command_id, name, body, state, code, message[:500], now, now, now),
            )
            return cursor.rowcount == 1

    def claim(self, target: Target, now: float) -> list[LedgerEntry]:
        """The pending commands for ``target``, now marked running (in one
        transaction: two instances of a process never both take one)."""
        with self.store.write() as conn:
            rows = conn.execute(
                "UPDATE commands SET state = 'running' WHERE target = ? AND state = 'pending'"
                " AND expires > ? RETURNING *",
                (target, now),
            ).fetchall()
        return sorted((_entry(r) for r in rows), key=lambda e: (e.received, e.id))

    def finish(
        self,
        command_id: str,
        state: FinalState,
        code: str,
        message: str,
        now: float,
        *,
        detail: dict[str, Any] | None = None,
        attachment: bytes | None = None,
    ) -> None:
        """Record a command's outcome (once: a finished command stays finished)."""
        with self.store.write() as conn:
            conn.execute(
                "UPDATE commands SET state = ?, code = ?, message = ?, detail = ?,"
                " attachment = ?, finished = ? WHERE id = ? AND state IN ('pending', 'running')",
                (state, code, message[:500], json.dumps(detail or {}, ensure_ascii=False),
                 attachment, now, command_id),
            )  # fmt: skip

    def settle_attachment(
        self,
        command_id: str,
        state: FinalState,
        code: str,
        message: str,
        detail: dict[str, Any],
    ) -> None:
        """After the agent uploaded (or failed to upload) a finished command's
        attachment: its reported outcome, and the attachment dropped."""
        with self.store.write() as conn:
            conn.execute(
                "UPDATE commands SET state = ?, code = ?, message = ?, detail = ?,"
                " attachment = NULL WHERE id = ? AND finished IS NOT NULL AND reported = 0",
                (state, code, message[:500], json.dumps(detail, ensure_ascii=False), command_id),
            )

    def with_attachment(self, limit: int = 10) -> list[LedgerEntry]:
        """Finished, unreported commands whose attachment waits for upload."""
        rows = self.store.query(
            "SELECT * FROM commands WHERE reported = 0 AND finished IS NOT NULL"
            " AND attachment IS NOT NULL ORDER BY finished LIMIT ?",
            (limit,),
        )
        return [_entry(r) for r in rows]

    def interrupted(self, target: Target) -> list[str]:
        """Ids of ``target``'s commands left running (its process stopped mid-way)."""
        rows = self.store.query(
            "SELECT id FROM commands WHERE target = ? AND state = 'running'", (target,)
        )
        return [str(r["id"]) for r in rows]

    def expire_unclaimed(self, now: float) -> int:
        """Finish as ``expired`` every command whose process never took it in time."""
        with self.store.write(use_reserve=True) as conn:
            cursor = conn.execute(
                "UPDATE commands SET state = 'expired', code = 'expired', finished = ?,"
                " message = 'expired before the device could run it'"
                " WHERE state = 'pending' AND expires <= ?",
                (now, now),
            )
            return cursor.rowcount

    def get(self, command_id: str) -> LedgerEntry | None:
        rows = self.store.query("SELECT * FROM commands WHERE id = ?", (command_id,))
        return _entry(rows[0]) if rows else None

    def unreported(self, limit: int = 50) -> list[LedgerEntry]:
        """Finished commands whose result central has not had yet."""
        rows = self.store.query(
            "SELECT * FROM commands WHERE reported = 0 AND finished IS NOT NULL"
            " ORDER BY finished LIMIT ?",
            (limit,),
        )
        return [_entry(r) for r in rows]

    def mark_reported(self, command_id: str) -> None:
        with self.store.write(use_reserve=True) as conn:
            conn.execute(
                "UPDATE commands SET reported = 1, attachment = NULL WHERE id = ?", (command_id,)
            )

    def prune(self, now: float) -> int:
        """Forget reported commands long expired."""
        with self.store.write(use_reserve=True) as conn:
            cursor = conn.execute(
                "DELETE FROM commands WHERE reported = 1 AND expires < ?",
                (now - KEEP_AFTER_EXPIRY_SECONDS,),
            )
            return cursor.rowcount


def _entry(row: Any) -> LedgerEntry:
    return LedgerEntry(
        id=row["id"],
        name=row["name"],
        target=row["target"],
        body=bytes(row["body"]),
        state=row["state"],
        code=row["code"],
        message=row["message"],
        detail=json.loads(row["detail"] or "{}"),
        attachment=bytes(row["attachment"]) if row["attachment"] is not None else None,
        expires=row["expires"],
        received=row["received"],
        finished=row["finished"],
    )
