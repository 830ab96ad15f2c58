"""Pushed configuration in tests: central's command key (a fresh Ed25519
key, its public PEM written where a device's ``commands.public_key_file``
names it) and signed ``config.apply`` commands."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from contracts.commands import key_id, sign


@dataclass
class CommandKey:
    private: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def keys(self) -> dict[str, Ed25519PublicKey]:
        public = self.private.public_key()
        return {key_id(public): public}

    def write_public(self, path: Path) -> Path:
        pem = self.private.public_key().public_bytes(
            Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
        )
        path.write_bytes(pem)
        return path

    def sign(
        self, device: str, name: str, args: dict[str, Any], *, issued_by: str = "staff:ops1",
        issued_at: datetime | None = None, lifetime: timedelta = timedelta(minutes=10),
    ) -> bytes:  # fmt: skip
        return sign(self.private, command_id=str(uuid.uuid4()), device=device, name=name,
                    args=args, issued_by=issued_by, issued_at=issued_at or datetime.now(UTC),
                    lifetime=lifetime)  # fmt: skip

    def push(self, device: str, version: int, settings: dict[str, Any], **kw: Any) -> bytes:
        """A signed ``config.apply`` command."""
        return self.sign(device, "config.apply", {"version": version, "settings": settings}, **kw)
