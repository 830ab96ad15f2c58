"""APDU building and parsing: pure functions, no I/O.

Everything the card says passes through here first, so every parser raises
:class:`MalformedResponseError` (never ``IndexError`` or ``struct.error``) on
garbage. The hypothesis tests feed random bytes to these functions.

Facts (AIDs, file ids, status words) are from
``docs/cardreader.md`` § "Card facts".
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cardreader.errors import ForbiddenCommandError, MalformedResponseError

# The JPKI application (公的個人認証AP). The only DF we ever select by name.
JPKI_AID = bytes.fromhex("D392F000260100000001")
# Applications we never select: input support (holds the 12-digit number) and
# the visual AP. Listed so the guard and the trace check can name them.
INPUT_SUPPORT_AID = bytes.fromhex("D3921000310001010408")
VISUAL_AID = bytes.fromhex("D3921000310001010402")
FORBIDDEN_AIDS = (INPUT_SUPPORT_AID, VISUAL_AID)

EF_TOKEN_INFO = 0x0006
EF_AUTH_CERT = 0x000A
EF_AUTH_CA_CERT = 0x000B
EF_AUTH_KEY = 0x0017
EF_AUTH_PIN = 0x0018

SW_OK = 0x9000
SW_END_OF_FILE = (0x6282, 0x6B00)
SW_BLOCKED = (0x6983, 0x6984)
SW_SECURITY = 0x6982
SW_NOT_FOUND = 0x6A82
SW_WRONG_LENGTH = 0x6700
# Answers of a card that does not do READ BINARY by short EF identifier
# (it then gets a SELECT and a plain READ BINARY).
SW_NO_SFI = (0x6A86, 0x6A81, 0x6981, 0x6D00, 0x6B00)

SHA256_DIGEST_INFO_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")

_SW_MEANINGS = {
    0x9000: "ok",
    0x6282: "end of file",
    0x6B00: "end of file / wrong offset",
    0x6300: "verification failed",
    0x6700: "wrong length",
    0x6981: "command incompatible with file",
    0x6982: "security status not satisfied (PIN needed)",
    0x6983: "authentication method blocked",
    0x6984: "referenced data blocked",
    0x6985: "conditions of use not satisfied",
    0x6A81: "function not supported",
    0x6A82: "file or application not found",
    0x6A86: "incorrect P1/P2",
    0x6A88: "data object not found",
    0x6D00: "instruction not supported",
    0x6E00: "class not supported",
    0x6F00: "no precise diagnosis",
}

_INS_NAMES = {
    0xA4: "SELECT",
    0xB0: "READ BINARY",
    0x20: "VERIFY",
    0x24: "CHANGE REFERENCE DATA",
    0x2A: "COMPUTE DIGITAL SIGNATURE",
    0xC0: "GET RESPONSE",
    0xCA: "GET DATA",
}
# Commands whose data field is a secret: masked in every trace.
_SECRET_INS = frozenset({0x20, 0x24})


def sw_meaning(sw: int) -> str:
    if sw & 0xFFF0 == 0x63C0:
        return f"wrong PIN or query, {sw & 0x0F} tries left"
    if sw >> 8 == 0x61:
        return f"{sw & 0xFF or 256} more bytes available"
    if sw >> 8 == 0x6C:
        return f"wrong Le, exact length {sw & 0xFF or 256}"
    return _SW_MEANINGS.get(sw, "unexpected status")


def command_name(command: bytes) -> str:
    """A short human name for a command APDU, e.g. ``SELECT`` or ``GET UID``."""
    if len(command) < 4:
        return "APDU"
    if command[0] == 0xFF and command[1] == 0xCA:
        return "GET UID"
    return _INS_NAMES.get(command[1], f"INS {command[1]:02X}")


def is_secret(command: bytes) -> bool:
    """VERIFY / CHANGE REFERENCE DATA: data is a PIN, never retried or logged."""
    return len(command) >= 4 and command[1] in _SECRET_INS


def trace_text(command: bytes) -> str:
    """Hex of a command for traces, with the data of VERIFY-like commands masked."""
    if len(command) > 5 and command[1] in _SECRET_INS:
        return command[:5].hex(" ").upper() + " " + " ".join("**" for _ in command[5:])
    return command.hex(" ").upper()


def split_response(raw: bytes) -> tuple[bytes, int]:
    """Split a response APDU into data and status word."""
    if len(raw) < 2:
        raise MalformedResponseError(f"{len(raw)} bytes, a status word needs 2")
    return raw[:-2], (raw[-2] << 8) | raw[-1]


def check_allowed(command: bytes) -> None:
    """Refuse commands we must never send.

    SELECT by DF name (P1=04) is allowed only with the full JPKI AID: JICSAP
    cards also select a DF by a *prefix* of its name, so a deny-list of the
    input-support and visual AIDs would not be enough.
    """
    if len(command) >= 5 and command[1] == 0xA4 and command[2] == 0x04:
        aid = command[5 : 5 + command[4]]
        if aid != JPKI_AID:
            raise ForbiddenCommandError(
                f"refusing SELECT of application {aid.hex().upper()}: only the JPKI "
                "application may be selected (the My Number is never read)"
            )


def select_aid(aid: bytes) -> bytes:
    return bytes([0x00, 0xA4, 0x04, 0x0C, len(aid)]) + aid


def select_ef(fid: int) -> bytes:
    return bytes([0x00, 0xA4, 0x02, 0x0C, 0x02, fid >> 8, fid & 0xFF])


def read_binary(offset: int, length: int) -> bytes:
    """Short READ BINARY; ``length`` 1..256 (256 is sent as Le=00)."""
    if not 0 <= offset <= 0x7FFF or not 1 <= length <= 256:
        raise ValueError(f"READ BINARY offset {offset} / length {length} out of range")
    return bytes([0x00, 0xB0, offset >> 8, offset & 0xFF, length & 0xFF])


def read_binary_sfi(sfi: int, offset: int, length: int) -> bytes:
    """READ BINARY by short EF identifier: no SELECT needed (one APDU fewer);
    the offset fits P2, so only the first 256 bytes of a file are reachable."""
    if not 1 <= sfi <= 30 or not 0 <= offset <= 0xFF or not 1 <= length <= 256:
        raise ValueError(f"READ BINARY SFI {sfi} offset {offset} / length {length} out of range")
    return bytes([0x00, 0xB0, 0x80 | sfi, offset, length & 0xFF])


def read_binary_extended(offset: int, length: int) -> bytes:
    """Extended-Le READ BINARY (3-byte Le); only as an optimisation."""
    if not 0 <= offset <= 0x7FFF or not 1 <= length <= 0xFFFF:
        raise ValueError(f"READ BINARY offset {offset} / length {length} out of range")
    return bytes([0x00, 0xB0, offset >> 8, offset & 0xFF, 0x00, length >> 8, length & 0xFF])


def verify(pin: bytes) -> bytes:
    return bytes([0x00, 0x20, 0x00, 0x80, len(pin)]) + pin


def verify_status() -> bytes:
    """VERIFY without data: asks for the retry counter, consumes no try."""
    return bytes([0x00, 0x20, 0x00, 0x80])


def compute_signature(digest_info: bytes) -> bytes:
    if not 1 <= len(digest_info) <= 245:
        raise ValueError("signature input must be 1..245 bytes")
    return bytes([0x80, 0x2A, 0x00, 0x80, len(digest_info)]) + digest_info + b"\x00"


GET_UID = bytes([0xFF, 0xCA, 0x00, 0x00, 0x00])


def get_response(length: int) -> bytes:
    return bytes([0x00, 0xC0, 0x00, 0x00, length & 0xFF])


def with_le(command: bytes, le: int) -> bytes:
    """The same short command with another Le (for a ``6Cxx`` answer)."""
    if len(command) == 4:
        return command + bytes([le & 0xFF])
    if len(command) == 5:
        return command[:4] + bytes([le & 0xFF])
    lc = command[4]
    if lc == 0 or len(command) < 5 + lc:
        raise MalformedResponseError("6Cxx answer to a command that cannot carry Le")
    return command[: 5 + lc] + bytes([le & 0xFF])


def sha256_digest_info(message: bytes) -> bytes:
    """PKCS#1 DigestInfo of SHA-256(message): what the JPKI card signs (P1=00)."""
    return SHA256_DIGEST_INFO_PREFIX + hashlib.sha256(message).digest()


def pin_tries(sw: int) -> int | None:
    """Tries left from a ``63Cx`` status word, else None."""
    return sw & 0x0F if sw & 0xFFF0 == 0x63C0 else None


@dataclass(frozen=True)
class Tlv:
    tag: int
    value: bytes
    header_length: int


def parse_tlv(data: bytes, offset: int = 0) -> Tlv:
    """Parse one BER-TLV at ``offset`` (multi-byte tags, definite lengths)."""
    end = len(data)
    pos = offset
    if pos >= end:
        raise MalformedResponseError("TLV: no tag")
    tag = data[pos]
    pos += 1
    if tag & 0x1F == 0x1F:
        for _ in range(3):
            if pos >= end:
                raise MalformedResponseError("TLV: truncated tag")
            tag = (tag << 8) | data[pos]
            pos += 1
            if not data[pos - 1] & 0x80:
                break
        else:
            raise MalformedResponseError("TLV: tag longer than 4 bytes")
    length, pos = _parse_length(data, pos)
    if pos + length > end:
        raise MalformedResponseError(f"TLV: value of {length} bytes, only {end - pos} present")
    return Tlv(tag, data[pos : pos + length], pos - offset)


def parse_tlvs(data: bytes) -> list[Tlv]:
    """Parse a sequence of BER-TLVs.

    ``00`` bytes between objects and trailing ``00``/``FF`` filler are
    skipped (``FF`` elsewhere starts a tag: the card uses ``FF 20``).
    """
    items: list[Tlv] = []
    pos = 0
    while pos < len(data):
        if data[pos] == 0x00:
            pos += 1
            continue
        if not data[pos:].strip(b"\x00\xff"):
            break
        item = parse_tlv(data, pos)
        items.append(item)
        pos += item.header_length + len(item.value)
    return items


def _parse_length(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise MalformedResponseError("TLV: no length")
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    count = first & 0x7F
    if count == 0 or count > 3:
        raise MalformedResponseError(f"TLV: unsupported length form {first:02X}")
    if pos + count > len(data):
        raise MalformedResponseError("TLV: truncated length")
    return int.from_bytes(data[pos : pos + count], "big"), pos + count


def der_total_length(header: bytes) -> int:
    """Total size of a DER SEQUENCE from its first bytes (tag + length).

    The JPKI certificate files start with ``30 82 HH LL``: total = 4 + HHLL.
    """
    if not header or header[0] != 0x30:
        raise MalformedResponseError(
            f"certificate file does not start with a DER SEQUENCE ({header[:4].hex() or 'empty'})"
        )
    length, pos = _parse_length(header, 1)
    total = pos + length
    if total < 16 or total > 0x8000:
        raise MalformedResponseError(f"implausible certificate size {total}")
    return total


def token_label(data: bytes) -> str:
    """The space-padded label at the start of the JPKI token-info file."""
    raw = data[:32].rstrip(b" \x00")
    try:
        label = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise MalformedResponseError("token label is not ASCII") from exc
    if not label.isprintable():
        raise MalformedResponseError("token label has control characters")
    return label
