"""A faulty card: a My Number Card that misbehaves in one chosen way.

Modes:

``garbage``
    every answer is one byte (no status word at all).
``truncated``
    the certificate file is cut short: its DER header promises more bytes
    than the file holds.
``wrong-sw``
    SELECT of the JPKI application works, then every command answers
    ``6F00`` (no precise diagnosis).
``remove-mid-read``
    the card leaves the reader during the second READ BINARY of the
    certificate (no answer, the vpcd link closes).
``slow``
    every READ BINARY takes ``delay`` seconds (for per-APDU timeouts).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from cardreader.sim.mynumber import MyNumberCard
from cardreader.sim.vpcd import RemoveCard

FAULT_MODES = ("garbage", "truncated", "wrong-sw", "remove-mid-read", "slow")


@dataclass
class FaultyCard:
    inner: MyNumberCard
    mode: str = "garbage"
    delay: float = 2.0
    reads: int = 0
    _wake: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        if self.mode not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {self.mode!r}; one of {', '.join(FAULT_MODES)}")
        if self.mode == "truncated":
            self.inner.cert_der = self.inner.cert_der[: len(self.inner.cert_der) // 2]

    @property
    def atr(self) -> bytes:
        return self.inner.atr

    def power(self, on: bool) -> None:
        self.inner.power(on)

    def release(self) -> None:
        """End a pending ``slow`` answer now (tests call it before removing)."""
        self._wake.set()

    def apdu(self, command: bytes) -> bytes:
        is_read = command[1:2] == b"\xb0"
        match self.mode:
            case "garbage":
                return b"\x6a"
            case "wrong-sw":
                answer = self.inner.apdu(command)
                return answer if command[1:3] == b"\xa4\x04" else b"\x6f\x00"
            case "remove-mid-read" if is_read and self.inner.current_ef == 0x000A:
                self.reads += 1
                if self.reads == 2:
                    raise RemoveCard()
            case "slow" if is_read:
                self._wake.wait(self.delay)
        return self.inner.apdu(command)
