"""Signed remote commands for device-side tests: a throwaway central command
key (its public half written where ``commands.public_key_file`` points) and
the ledger entry the sync agent would make of a command."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from contracts.commands import TARGETS, sign
from sync.ledger import CommandLedger, LedgerEntry
from sync.store import open_store


@dataclass
class CommandSigner:
    """Central's side in a test: signs commands for ``device``."""

    device: str
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    def write_public_key(self, path: Path) -> Path:
        pem = self.key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        path.write_bytes(pem)
        return path

    def sign(
        self,
        name: str,
        args: dict[str, Any],
        *,
        lifetime: timedelta = timedelta(minutes=5),
        issued_at: datetime | None = None,
    ) -> bytes:
        return sign(
            self.key,
            command_id=str(uuid.uuid4()),
            device=self.device,
            name=name,
            args=args,
            issued_by="staff:ops1",
            issued_at=issued_at or datetime.now(UTC),
            lifetime=lifetime,
        )


def receive(db: Path, payload: bytes) -> str:
    """Put a command in the ledger as the sync agent does after verifying it
    (or, for a forged one, as anything that can write the store could)."""
    body = json.loads(payload)
    expires = datetime.fromisoformat(body["expires_at"]).timestamp()
    with open_store(db) as store:
        taken = CommandLedger(store).receive(
            body["id"], body["name"], TARGETS[body["name"]], payload,
            expires=expires, now=time.time(),
        )  # fmt: skip
    assert taken, "the command id was in the ledger already"
    return str(body["id"])


def forged(payload: bytes, **args: Any) -> bytes:
    """The same command with changed arguments and its old signature."""
    body = json.loads(payload)
    body["args"].update(args)
    return json.dumps(body).encode()


def entry(db: Path, command_id: str) -> LedgerEntry | None:
    with open_store(db) as store:
        return CommandLedger(store).get(command_id)
