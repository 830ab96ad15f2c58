"""The card side of the vpcd protocol: plays a virtual card into pcscd.

vpcd (vsmartcard's PC/SC driver) listens on a TCP port per reader slot; a
card emulator connects to it. Connecting is inserting the card, closing the
socket is removing it. Every message, both ways, is a 2-byte big-endian
length and a payload. A 1-byte payload from the driver is a control code
(power off, power on, reset, "send your ATR"); anything longer is an APDU,
answered with the card's response.

The driver writes length and payload in two ``send()`` calls with Nagle on,
so without ``TCP_QUICKACK`` before each read every APDU waits for the
delayed ACK (about 40 ms).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
from typing import Protocol

log = logging.getLogger(__name__)

CTRL_POWER_OFF, CTRL_POWER_ON, CTRL_RESET, CTRL_ATR = 0, 1, 2, 4


class RemoveCard(Exception):
    """Raised by a virtual card's ``apdu()`` to pull itself out of the reader
    (the link closes without answering), like a card removed mid-command."""


class VirtualCard(Protocol):
    """What a virtual card implements."""

    @property
    def atr(self) -> bytes:
        """The ATR the reader reports for this card."""

    def power(self, on: bool) -> None:
        """Power on (or cold reset) / off: volatile state such as PIN status resets."""

    def apdu(self, command: bytes) -> bytes:
        """Answer one command APDU with response data + SW1 SW2."""


class VpcdLink:
    """One virtual card in one vpcd reader slot, served on a thread of its own.

    ``insert()`` connects (pcscd sees the card within its polling interval),
    ``remove()`` disconnects. Several insert/remove cycles are allowed.
    """

    def __init__(self, card: VirtualCard, host: str = "127.0.0.1", port: int = 35963) -> None:
        self.card = card
        self.host = host
        self.port = port
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.apdu_count = 0

    @property
    def inserted(self) -> bool:
        return self._sock is not None

    def insert(self, timeout: float = 5.0) -> None:
        with self._lock:
            if self._sock is not None:
                return
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
            self._thread = threading.Thread(
                target=self._serve, args=(sock,), name=f"vpcd-{self.port}", daemon=True
            )
            self._thread.start()

    def remove(self) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
            thread, self._thread = self._thread, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    close = remove

    def _serve(self, sock: socket.socket) -> None:
        try:
            while True:
                message = _read_message(sock)
                if message is None:
                    break
                reply = self._handle(message)
                if reply is not None:
                    sock.sendall(struct.pack(">H", len(reply)) + reply)
        except RemoveCard:
            log.info("virtual card pulled itself out", extra={"port": self.port})
        except OSError:
            pass  # removed (socket closed) or driver gone
        except Exception:
            log.exception("virtual card failed", extra={"port": self.port})
        finally:
            with self._lock:
                if self._sock is sock:
                    self._sock = None
            sock.close()

    def _handle(self, message: bytes) -> bytes | None:
        if len(message) == 1:
            code = message[0]
            if code == CTRL_ATR:
                return self.card.atr
            if code in (CTRL_POWER_ON, CTRL_RESET):
                self.card.power(True)
            elif code == CTRL_POWER_OFF:
                self.card.power(False)
            return None
        self.apdu_count += 1
        return self.card.apdu(message)


def _read_exact(sock: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        # Linux clears QUICKACK after use; set it before every read.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _read_message(sock: socket.socket) -> bytes | None:
    header = _read_exact(sock, 2)
    if header is None:
        return None
    (size,) = struct.unpack(">H", header)
    return _read_exact(sock, size) if size else b""
