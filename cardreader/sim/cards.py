"""Simple virtual cards: a contactless member card that only has a UID.

PC/SC readers answer the pseudo-APDU ``FF CA 00 00 00`` (GET DATA, UID) for
contactless cards: the FeliCa IDm (8 bytes) or the MIFARE UID (4 or 7
bytes). Everything else such a card does not understand.
"""

from __future__ import annotations

from dataclasses import dataclass

SW_OK = b"\x90\x00"
SW_FILE_NOT_FOUND = b"\x6a\x82"
SW_INS_NOT_SUPPORTED = b"\x6d\x00"
SW_WRONG_P1P2 = b"\x6b\x00"

# PC/SC part 3 ATRs that readers build for contactless storage cards (the
# card itself sends none); the last byte is the TCK checksum.
ATR_FELICA = bytes.fromhex("3B8F8001804F0CA00000030611003B0000000042")
ATR_MIFARE_1K = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")


@dataclass
class UidCard:
    """A card that answers GET DATA (UID) and nothing else."""

    uid: bytes
    atr: bytes = ATR_FELICA

    def power(self, on: bool) -> None:
        return None

    def apdu(self, command: bytes) -> bytes:
        if command[:2] == b"\xff\xca":
            if command[2] != 0:
                return SW_WRONG_P1P2
            return self.uid + SW_OK
        if command[1:2] == b"\xa4":
            return SW_FILE_NOT_FOUND
        return SW_INS_NOT_SUPPORTED


SW_CLA_NOT_SUPPORTED = b"\x6e\x00"
# A contact card of some other scheme (bank / transit): a generic T=1 ATR.
ATR_OTHER = bytes.fromhex("3B8880010000000000718100F8")


@dataclass
class UnknownCard:
    """A card that is neither JPKI nor a member card: no JPKI AP, no UID."""

    atr: bytes = ATR_OTHER

    def power(self, on: bool) -> None:
        return None

    def apdu(self, command: bytes) -> bytes:
        if command[:1] == b"\xff":
            return SW_CLA_NOT_SUPPORTED
        if command[1:2] == b"\xa4":
            return SW_FILE_NOT_FOUND
        return SW_INS_NOT_SUPPORTED
