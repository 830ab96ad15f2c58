"""Opaque credential references: what reservations and events carry.

A reference is ``HMAC-SHA256(key, domain || value)`` cut to 160 bits and
written as lower-case base32 in four hyphenated groups of eight, behind a
short prefix naming the kind and the scheme version::

    m1-k3lq2vxa-7hq4rzpe-b2m5c6wt-dn4yx7aa   member card (FeliCa IDm / MIFARE UID)
    j2-...     JPKI user-auth certificate: its issuer and serial number (what a tap reads)
    j1-...     JPKI user-auth certificate: SHA-256 of the whole DER (legacy, still
               accepted: see docs/cardreader.md, "Card references and migration")

Both JPKI forms name one certificate: a CA never issues two certificates with
one serial, and the fingerprint covers issuer and serial. ``j2`` needs only
the first ~190 bytes of the certificate, ``j1`` all of it (1.2-2 KB).

* Without the device fleet's key the reference reveals nothing about the
  UID or certificate, and it cannot be linked across deployments with
  different keys.
* Base32 text in groups of eight can never look like a 12-digit number,
  so it passes the personal-data guard of the event outbox.
* The key is 32 random bytes (file with 64 hex characters, or 32 raw bytes),
  named by ``reader.credential_key_file``. Changing it changes every
  reference: reservations then have to be re-linked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from pathlib import Path

from cardreader.errors import CredentialKeyError

log = logging.getLogger(__name__)

KEY_BYTES = 32
DEMO_KEY = hashlib.sha256(b"city-kiosk DEMO credential key -- not for production").digest()
_DOMAINS = {
    "m1": b"cardreader/member/v1\x00",
    "j1": b"cardreader/jpki-cert/v1\x00",
    "j2": b"cardreader/jpki-issuer-serial/v2\x00",
}


def _reference(key: bytes, scheme: str, value: bytes) -> str:
    if len(key) != KEY_BYTES:
        raise CredentialKeyError(f"credential key must be {KEY_BYTES} bytes, got {len(key)}")
    digest = hmac.new(key, _DOMAINS[scheme] + value, hashlib.sha256).digest()[:20]
    text = base64.b32encode(digest).decode("ascii").lower()
    groups = "-".join(text[i : i + 8] for i in range(0, len(text), 8))
    return f"{scheme}-{groups}"


def member_reference(key: bytes, uid: bytes) -> str:
    """Reference of a member card from its UID / IDm."""
    if not uid:
        raise ValueError("empty UID")
    return _reference(key, "m1", uid)


def certificate_reference(key: bytes, fingerprint: bytes) -> str:
    """Legacy (``j1``) reference of a JPKI user-auth certificate from its
    SHA-256 fingerprint: cards enrolled before ``j2`` carry it."""
    if len(fingerprint) != 32:
        raise ValueError("fingerprint must be a SHA-256 digest (32 bytes)")
    return _reference(key, "j1", fingerprint)


def issuer_serial_reference(key: bytes, issuer: bytes, serial: bytes) -> str:
    """``j2`` reference of a JPKI user-auth certificate: its issuer Name (DER)
    and serial number (the INTEGER's content octets). The issuer's length
    goes first so that no two (issuer, serial) pairs hash the same input."""
    if not issuer or not serial or len(issuer) > 0xFFFF:
        raise ValueError("issuer and serial are needed")
    return _reference(key, "j2", len(issuer).to_bytes(2, "big") + issuer + serial)


def is_legacy_jpki(ref: str) -> bool:
    return ref.startswith("j1-")


def load_key(path: Path) -> bytes:
    """Read the reference key (64 hex characters or 32 raw bytes)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CredentialKeyError(
            f"credential key file {path} cannot be read ({exc.strerror}): "
            "create it with `python -m cardreader keygen PATH`"
        ) from exc
    text = raw.strip()
    if len(text) == 2 * KEY_BYTES:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    if len(raw) == KEY_BYTES:
        return raw
    raise CredentialKeyError(
        f"credential key file {path} must hold {KEY_BYTES} bytes (64 hex characters)"
    )


def write_new_key(path: Path) -> None:
    """Create a fresh key file (hex, mode 0600); refuse to overwrite one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("x", encoding="ascii") as f:
            path.chmod(0o600)
            f.write(secrets.token_hex(KEY_BYTES) + "\n")
    except FileExistsError as exc:
        raise CredentialKeyError(f"{path} exists already; not overwriting a key") from exc
