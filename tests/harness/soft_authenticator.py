"""A software WebAuthn authenticator for tests: an ECDSA P-256 key that
answers ``navigator.credentials.create()`` (attestation "none") and
``get()`` the way a browser passes them on -- with any RP id, origin,
signature counter and flags a test wants to attack with."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import bytes_to_base64url, encode_cbor

UP, UV, AT = 0x01, 0x04, 0x40


def _b64(data: bytes) -> str:
    return bytes_to_base64url(data)


@dataclass
class SoftAuthenticator:
    rp_id: str
    origin: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    credential_id: bytes = field(default_factory=lambda: os.urandom(32))
    sign_count: int = 0

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return encode_cbor({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                            -3: numbers.y.to_bytes(32, "big")})  # fmt: skip

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        data = {"type": kind, "challenge": challenge, "origin": origin or self.origin,
                "crossOrigin": False}  # fmt: skip
        return json.dumps(data).encode()

    def create(self, options: dict[str, Any], *, rp_id: str | None = None,
               flags: int = UP | UV) -> str:  # fmt: skip
        """The JSON of a registration answer to py_webauthn's ``options``."""
        rp_hash = hashlib.sha256((rp_id or self.rp_id).encode()).digest()
        attested = (bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id
                    + self._cose_key())  # fmt: skip
        auth_data = rp_hash + bytes([flags | AT]) + struct.pack(">I", self.sign_count) + attested
        attestation = encode_cbor({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client = self._client_data("webauthn.create", options["challenge"], None)
        return json.dumps({
            "id": _b64(self.credential_id), "rawId": _b64(self.credential_id),
            "type": "public-key", "clientExtensionResults": {},
            "response": {"clientDataJSON": _b64(client), "attestationObject": _b64(attestation),
                         "transports": ["internal"]},
        })  # fmt: skip

    def get(self, options: dict[str, Any], *, rp_id: str | None = None,
            origin: str | None = None, count: int | None = None, flags: int = UP | UV,
            forge: bool = False) -> str:  # fmt: skip
        """The JSON of an assertion for ``options``; the counter goes up by one
        unless ``count`` says what to send. ``forge``: a signature by another key."""
        if count is None:
            self.sign_count += 1
            count = self.sign_count
        rp_hash = hashlib.sha256((rp_id or self.rp_id).encode()).digest()
        auth_data = rp_hash + bytes([flags]) + struct.pack(">I", count)
        client = self._client_data("webauthn.get", options["challenge"], origin)
        signer = ec.generate_private_key(ec.SECP256R1()) if forge else self.key
        signature = signer.sign(auth_data + hashlib.sha256(client).digest(),
                                ec.ECDSA(hashes.SHA256()))  # fmt: skip
        return json.dumps({
            "id": _b64(self.credential_id), "rawId": _b64(self.credential_id),
            "type": "public-key", "clientExtensionResults": {},
            "response": {"clientDataJSON": _b64(client), "authenticatorData": _b64(auth_data),
                         "signature": _b64(signature)},
        })  # fmt: skip
