"""A virtual My Number Card: the JPKI application as a real card exposes it.

Faithful enough that standard middleware (OpenSC's JPKI driver behind
``pkcs15-tool`` and ``pkcs11-tool``) binds to it as to a real card:

* SELECT of the JPKI AID (P1=04, P2=0C) and of EFs under it (P1=02);
  any other application answers ``6A82``. Every SELECT-by-name is recorded
  in ``selected_aids`` and every file read in ``files_read`` so tests can
  prove what the product asked for.
* READ BINARY with a short or (optionally) extended Le, and by short EF
  identifier (P1 = 80|SFI, offset in P2, which also makes the EF current);
  ``6282`` at a short end, ``6B00`` past the end. Files: token info (0006,
  a 160-byte CK_TOKEN_INFO), certificate availability (0008), the
  user-authentication certificate (000A) and its CA (000B) with no PIN; the
  signing certificate (0001) only after the signing password is verified
  (``6982`` before); the signing CA (0002) with no PIN.
* Two PINs with their own retry counters, persisted to JSON files like the
  card's EEPROM: the user-auth PIN (0018, 3 tries) and the signing password
  (001B, 5 tries). ``63Cx`` answers, ``63C0`` on the last wrong try,
  ``6984`` afterwards; a status query (VERIFY without data) consumes
  nothing and answers ``9000`` once verified. Verified state is volatile
  (lost on power-off). VERIFY by SFI (P2 = 98 / 9B) works too.
* COMPUTE DIGITAL SIGNATURE (80 2A 00 80 with the key EF current, or P2 =
  97 / 9A by SFI): ``6982`` unless that key's PIN is verified; otherwise
  PKCS#1 v1.5 type-1 padding of the DigestInfo given and a raw RSA
  operation, like the card.
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
MAX_SIGN_TRIES = 5

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
EF_TOKEN, EF_AVAILABLE = 0x0006, 0x0008
EF_AUTH_CERT, EF_AUTH_CA, EF_PIN, EF_KEY = 0x000A, 0x000B, 0x0018, 0x0017
EF_SIGN_CERT, EF_SIGN_CA, EF_SIGN_PIN, EF_SIGN_KEY = 0x0001, 0x0002, 0x001B, 0x001A
# Which PIN opens which key or file.
KEY_PIN = {EF_KEY: EF_PIN, EF_SIGN_KEY: EF_SIGN_PIN}
PIN_PROTECTED_FILES = {EF_SIGN_CERT: EF_SIGN_PIN}


def token_info(label: str) -> bytes:
    """A serialised CK_TOKEN_INFO: label, manufacturer, model, serial (space
    padded), then flags and counters (zero here): 160 bytes."""
    text = (
        label.ljust(32)
        + "TEST (city-kiosk virtual card)".ljust(32)
        + "TEST JPKI".ljust(16)
        + "0000000000000000"
    )
    return text.encode("ascii").ljust(160, b"\x00")


@dataclass
class PinState:
    """A retry counter, persisted (like the card's EEPROM) if a path is given."""

    path: Path | None = None
    tries_left: int = MAX_TRIES
    max_tries: int = MAX_TRIES

    def __post_init__(self) -> None:
        self.tries_left = min(self.tries_left, self.max_tries)
        if self.path is not None and self.path.exists():
            self.tries_left = int(json.loads(self.path.read_text())["tries_left"])

    def set(self, tries: int) -> None:
        self.tries_left = tries
        if self.path is not None:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"tries_left": tries}))
            tmp.replace(self.path)


def sign_state_for(path: Path | None) -> PinState:
    """The signing password's counter, in a file beside the user-auth one."""
    sign_path = None if path is None else path.with_name(f"{path.stem}.sign{path.suffix}")
    return PinState(sign_path, MAX_SIGN_TRIES, MAX_SIGN_TRIES)


@dataclass
class MyNumberCard:
    cert_der: bytes
    key: rsa.RSAPrivateKey
    ca_der: bytes
    pin: str = "1234"
    pin_state: PinState = field(default_factory=PinState)
    token_label: str = "JPKIAPICCTOKEN2"  # noqa: S105 -- a label, not a secret
    extended_length: bool = True
    # False: a card that refuses READ BINARY by short EF identifier (6A86).
    short_ef_ids: bool = True
    atr: bytes = ATR_MYNUMBER
    # The signing side: certificate, key and CA (None: a card without one,
    # e.g. a holder under 15), and its password (6-16 of A-Z and 0-9).
    sign_cert_der: bytes | None = None
    sign_key: rsa.RSAPrivateKey | None = None
    sign_ca_der: bytes | None = None
    sign_password: str = "TEST1234"  # noqa: S105 -- test material
    sign_pin_state: PinState = field(default_factory=lambda: sign_state_for(None))
    # Observations for tests: every SELECT-by-name AID, files read, VERIFYs with data.
    selected_aids: list[bytes] = field(default_factory=list)
    files_read: list[int] = field(default_factory=list)
    bytes_read: int = 0
    verify_attempts: int = 0
    _df: bytes | None = None
    _ef: int | None = None
    _verified: set[int] = field(default_factory=set)

    @property
    def current_ef(self) -> int | None:
        return self._ef

    def files(self) -> dict[int, bytes]:
        signing = self.sign_cert_der is not None
        found = {
            EF_TOKEN: token_info(self.token_label),
            EF_AVAILABLE: bytes([0x8F if signing else 0x00, 0x8F, 0x00]),
            EF_AUTH_CERT: self.cert_der,
            EF_AUTH_CA: self.ca_der,
        }
        if self.sign_cert_der is not None:
            found[EF_SIGN_CERT] = self.sign_cert_der
        if self.sign_ca_der is not None:
            found[EF_SIGN_CA] = self.sign_ca_der
        return found

    def _pins(self) -> dict[int, tuple[PinState, str]]:
        pins = {EF_PIN: (self.pin_state, self.pin)}
        if self.sign_key is not None:
            pins[EF_SIGN_PIN] = (self.sign_pin_state, self.sign_password)
        return pins

    def _keys(self) -> dict[int, rsa.RSAPrivateKey]:
        keys = {EF_KEY: self.key}
        if self.sign_key is not None:
            keys[EF_SIGN_KEY] = self.sign_key
        return keys

    def power(self, on: bool) -> None:
        self._df, self._ef = None, None
        self._verified = set()

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

    def _exists(self, fid: int) -> bool:
        return fid in self.files() or fid in self._pins() or fid in self._keys()

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
            if not self._exists(fid):
                return SW_NOT_FOUND
            self._ef = fid
            return SW_OK
        return SW_WRONG_P1P2 if c[2] not in (0x02, 0x04) else SW_NOT_FOUND

    def _read_binary(self, c: bytes) -> bytes:
        if c[2] & 0x80:  # by short EF identifier: offset in P2, EF made current
            if not self.short_ef_ids or c[2] & 0x60 or self._df != JPKI_AID:
                return SW_WRONG_P1P2
            fid, offset = c[2] & 0x1F, c[3]
            if fid not in self.files() and fid not in PIN_PROTECTED_FILES:
                return SW_NOT_FOUND
            self._ef = fid
        else:
            offset = (c[2] << 8) | c[3]
        ef = self._ef
        if ef is None:
            return SW_NOT_FOUND
        needed = PIN_PROTECTED_FILES.get(ef)
        if needed is not None and needed not in self._verified:
            return SW_SECURITY  # the signing certificate needs the signing password
        content = self.files().get(ef)
        if content is None:
            return SW_INCOMPATIBLE
        if len(c) == 5:
            le = c[4] or 256
        elif len(c) == 7 and c[4] == 0 and self.extended_length:
            le = int.from_bytes(c[5:7], "big") or 65536
        else:
            return SW_WRONG_LENGTH
        if offset >= len(content):
            return SW_EOF
        chunk = content[offset : offset + le]
        self.files_read.append(ef)
        self.bytes_read += len(chunk)
        return chunk + (SW_OK if len(chunk) == le else SW_EOF_SHORT)

    def _verify(self, c: bytes) -> bytes:
        if c[2] != 0x00 or not c[3] & 0x80 or c[3] & 0x60:
            return SW_WRONG_P1P2
        fid = c[3] & 0x1F if c[3] != 0x80 else self._ef
        if fid is None or fid not in self._pins():
            return SW_INCOMPATIBLE
        state, secret = self._pins()[fid]
        tries = state.tries_left
        if len(c) == 4:  # status query: consumes nothing
            if fid in self._verified:
                return SW_OK
            return bytes([0x63, 0xC0 | tries])
        self.verify_attempts += 1
        if tries == 0:
            return SW_BLOCKED
        if len(c) < 5 or len(c) != 5 + c[4]:
            return SW_WRONG_LENGTH
        if c[5:] == secret.encode("ascii"):
            state.set(state.max_tries)
            self._verified.add(fid)
            return SW_OK
        self._verified.discard(fid)
        state.set(tries - 1)
        return bytes([0x63, 0xC0 | (tries - 1)])

    def _sign(self, c: bytes) -> bytes:
        if c[3] == 0x80:
            fid = self._ef
        elif c[3] & 0x80 and not c[3] & 0x60:
            fid = c[3] & 0x1F
        else:
            return SW_WRONG_P1P2
        key = self._keys().get(fid) if fid is not None else None
        if key is None or fid is None:
            return SW_INCOMPATIBLE
        if KEY_PIN[fid] not in self._verified:
            return SW_SECURITY
        if c[2] != 0x00:
            return SW_WRONG_P1P2
        if len(c) < 6 or len(c) < 5 + c[4]:
            return SW_WRONG_LENGTH
        return raw_pkcs1_sign(key, c[5 : 5 + c[4]]) + SW_OK


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
