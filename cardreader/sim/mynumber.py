"""A virtual My Number Card: the JPKI application, user-authentication side.

It behaves like the real card where the kiosk depends on it:

* SELECT of the JPKI AID (P1=04, P2=0C) and of EFs under it (P1=02);
  any other application answers ``6A82`` -- and every SELECT is recorded in
  ``selected_aids`` so tests can prove which applications were asked for.
* READ BINARY refused (``6982``) for the signing certificate files (0001,
  0002), which need the signing password on the real card.
* READ BINARY of the token info (0006), certificate availability (0008), the
  user-auth certificate (000A) and its CA (000B), short Le and (optionally)
  extended Le; ``6282`` at a short end, ``6B00`` past the end.
* The user-auth PIN (0018): 3 tries, counter persisted to a JSON file,
  ``63Cx`` answers, ``63C0`` on the last wrong try, ``6984`` afterwards;
  a status query (VERIFY without data) consumes nothing. Verified state is
  volatile (lost on power-off).
* COMPUTE DIGITAL SIGNATURE (80 2A 00 80) with key 0017: ``6982`` without a
  verified PIN; otherwise PKCS#1 v1.5 type-1 padding of the given
  DigestInfo and a raw RSA operation, like the card.
* GET DATA ``FF CA`` answers a random 4-byte PUPI, as a Type B card does.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

JPKI_AID = bytes.fromhex("D392F000260100000001")
# A contact ATR of a current card generation (T=1).
ATR_MYNUMBER = bytes.fromhex("3BDA13FF8131FB468012392F31C173C601C03B")
MAX_TRIES = 3

SW_OK = b"\x90\x00"
SW_EOF_SHORT = b"\x62\x82"
SW_EOF = b"\x6b\x00"
SW_WRONG_LENGTH = b"\x67\x00"
SW_INCOMPATIBLE = b"\x69\x81"
SW_SECURITY = b"\x69\x82"
SW_BLOCKED = b"\x69\x84"
SW_NOT_FOUND = b"\x6a\x82"
SW_WRONG_P1P2 = b"\x6a\x86"
SW_INS_NOT_SUPPORTED = b"\x6d\x00"
EF_PIN, EF_KEY = 0x0018, 0x0017
# The signing certificate (name, address, birth date, sex) and its CA: the
# real card refuses to read them without the signing password; we never
# hold such data, we only refuse like the card.
PIN_PROTECTED_FILES = (0x0001, 0x0002)


def token_info(label: str) -> bytes:
    return label.encode("ascii").ljust(32, b" ") + bytes(128)


@dataclass
class PinState:
    """The retry counter, persisted (like the card's EEPROM) if a path is given."""

    path: Path | None = None
    tries_left: int = MAX_TRIES

    def __post_init__(self) -> None:
        if self.path is not None and self.path.exists():
            self.tries_left = int(json.loads(self.path.read_text())["tries_left"])

    def set(self, tries: int) -> None:
        self.tries_left = tries
        if self.path is not None:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"tries_left": tries}))
            tmp.replace(self.path)


@dataclass
class MyNumberCard:
    cert_der: bytes
    key: rsa.RSAPrivateKey
    ca_der: bytes
    pin: str = "1234"
    pin_state: PinState = field(default_factory=PinState)
    token_label: str = "JPKIAPICCTOKEN2"  # noqa: S105 -- a label, not a secret
    extended_length: bool = True
    atr: bytes = ATR_MYNUMBER
    # Observations for tests: every SELECT-by-name AID, VERIFYs with data.
    selected_aids: list[bytes] = field(default_factory=list)
    verify_attempts: int = 0
    _df: bytes | None = None
    _ef: int | None = None
    _verified: bool = False

    @property
    def current_ef(self) -> int | None:
        return self._ef

    def files(self) -> dict[int, bytes]:
        return {
            0x0006: token_info(self.token_label),
            0x0008: b"\x8f\x8f\x00",
            0x000A: self.cert_der,
            0x000B: self.ca_der,
        }

    def power(self, on: bool) -> None:
        self._df, self._ef, self._verified = None, None, False

    def apdu(self, command: bytes) -> bytes:
        if len(command) < 4:
            return SW_WRONG_LENGTH
        cla, ins = command[0], command[1]
        if cla == 0xFF and ins == 0xCA:
            return secrets.token_bytes(4) + SW_OK
        handler = {
            (0x00, 0xA4): self._select,
            (0x00, 0xB0): self._read_binary,
            (0x00, 0x20): self._verify,
            (0x80, 0x2A): self._sign,
        }.get((cla, ins))
        return handler(command) if handler else SW_INS_NOT_SUPPORTED

    def _select(self, c: bytes) -> bytes:
        if len(c) < 5 or len(c) < 5 + c[4]:
            return SW_WRONG_LENGTH
        data = c[5 : 5 + c[4]]
        if c[2] == 0x04:
            self.selected_aids.append(data)
            if data != JPKI_AID:
                return SW_NOT_FOUND
            self._df, self._ef = JPKI_AID, None
            return SW_OK
        if c[2] == 0x02 and len(data) == 2 and self._df == JPKI_AID:
            fid = int.from_bytes(data, "big")
            if fid in self.files() or fid in (EF_PIN, EF_KEY, *PIN_PROTECTED_FILES):
                self._ef = fid
                return SW_OK
            return SW_NOT_FOUND
        return SW_WRONG_P1P2 if c[2] not in (0x02, 0x04) else SW_NOT_FOUND

    def _read_binary(self, c: bytes) -> bytes:
        if c[2] & 0x80:
            return SW_WRONG_P1P2  # SFI reads: not used by us
        if self._ef in PIN_PROTECTED_FILES:
            return SW_SECURITY  # the signing side needs the signing password
        content = self.files().get(self._ef) if self._ef is not None else None
        if content is None:
            return SW_INCOMPATIBLE if self._ef is not None else SW_NOT_FOUND
        offset = (c[2] << 8) | c[3]
        if len(c) == 5:
            le = c[4] or 256
        elif len(c) == 7 and c[4] == 0 and self.extended_length:
            le = int.from_bytes(c[5:7], "big") or 65536
        else:
            return SW_WRONG_LENGTH
        if offset >= len(content):
            return SW_EOF
        chunk = content[offset : offset + le]
        return chunk + (SW_OK if len(chunk) == le else SW_EOF_SHORT)

    def _verify(self, c: bytes) -> bytes:
        if self._ef != EF_PIN or c[2:4] != b"\x00\x80":
            return SW_WRONG_P1P2 if self._ef == EF_PIN else SW_INCOMPATIBLE
        tries = self.pin_state.tries_left
        if len(c) == 4:  # status query: consumes nothing
            if self._verified:
                return SW_OK
            return bytes([0x63, 0xC0 | tries])
        self.verify_attempts += 1
        if tries == 0:
            return SW_BLOCKED
        if len(c) < 5 or len(c) != 5 + c[4]:
            return SW_WRONG_LENGTH
        if c[5:] == self.pin.encode("ascii"):
            self.pin_state.set(MAX_TRIES)
            self._verified = True
            return SW_OK
        self._verified = False
        self.pin_state.set(tries - 1)
        return bytes([0x63, 0xC0 | (tries - 1)])

    def _sign(self, c: bytes) -> bytes:
        if self._ef != EF_KEY or c[3] != 0x80:
            return SW_INCOMPATIBLE
        if not self._verified:
            return SW_SECURITY
        if c[2] != 0x00:
            return SW_WRONG_P1P2
        if len(c) < 6 or len(c) < 5 + c[4]:
            return SW_WRONG_LENGTH
        return raw_pkcs1_sign(self.key, c[5 : 5 + c[4]]) + SW_OK


def raw_pkcs1_sign(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    """RSA with PKCS#1 v1.5 type-1 padding of ``data`` as given (card P1=00)."""
    n = key.private_numbers()
    size = (key.key_size + 7) // 8
    if len(data) > size - 11:
        raise ValueError("data too long for the key")
    block = int.from_bytes(b"\x00\x01" + b"\xff" * (size - 3 - len(data)) + b"\x00" + data)
    # Chinese remainder theorem: about 3x faster than pow(block, d, n).
    m1, m2 = pow(block, n.dmp1, n.p), pow(block, n.dmq1, n.q)
    signature = m2 + (n.iqmp * (m1 - m2) % n.p) * n.q
    return signature.to_bytes(size, "big")
