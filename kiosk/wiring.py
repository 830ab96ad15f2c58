"""Builds the check-in objects from a device configuration: the one place
that knows which real (or simulated) implementation serves each port."""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from kiosk.access import policy_for_door
from kiosk.checkin import CheckinService, LockPort, LockUnavailable
from kiosk.reservations import StoreReservations
from kiosk.ui.session import CheckinSession
from sync.clock import clock_is_synchronised
from sync.config import DeviceConfig
from sync.errors import ConfigError
from sync.outbox import Outbox
from sync.store import open_store

SessionFactory = Callable[[Callable[[CheckinSession], None]], CheckinSession]


def credential_key(config: DeviceConfig) -> bytes:
    """The fleet's key for credential references and code hashes.

    Without ``reader.credential_key_file`` (the demo) a fixed key derived
    from the facility id is used and said to be a demo key in the docs.
    """
    path = config.reader.credential_key_file
    if path is None:
        return hashlib.sha256(f"demo-credential-key:{config.device.facility}".encode()).digest()
    try:
        raw = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(
            config.source, [f"reader.credential_key_file: cannot be read ({exc})"]
        ) from None
    try:
        key = bytes.fromhex(raw.decode())
    except (UnicodeDecodeError, ValueError):
        key = raw
    if len(key) < 16:
        raise ConfigError(config.source, ["reader.credential_key_file: key shorter than 16 bytes"])
    return key


def build_checkin_session(
    config: DeviceConfig, lock: LockPort, door: str | None = None
) -> tuple[SessionFactory, Callable[[], None]]:
    """A factory for the touchscreen's session, and a function that closes
    what it opened."""
    door_id = door or (config.doors[0].id if config.doors else "")
    if not door_id:
        raise ConfigError(config.source, ["doors: the touchscreen needs at least one door"])
    zone = ZoneInfo(config.device.timezone)
    store = open_store(config.store.path, busy_timeout=config.store.busy_timeout_seconds)
    service = CheckinService(
        door=door_id,
        facility=config.device.facility,
        policy=policy_for_door(config, door_id),
        reservations=StoreReservations(store, zone),
        lock=lock,
        outbox=Outbox(store, timezone=zone),
        code_key=credential_key(config),
        now=lambda: datetime.now(zone),
        clock_trusted=clock_is_synchronised,
    )
    names = {d.id: d.name or d.id for d in config.doors}

    def factory(on_change: Callable[[CheckinSession], None]) -> CheckinSession:
        session = CheckinSession(service, names, zone, on_change=on_change)
        session.activity(time.monotonic())
        return session

    return factory, store.close


class LockctlPort:
    """:class:`~kiosk.checkin.LockPort` over lockctl's unix socket (JSON lines).

    One short connection per request with a tight timeout: a missing or hung
    daemon becomes :class:`LockUnavailable` in well under a second, and the
    person is told to call staff.
    """

    def __init__(self, socket_path: Path, timeout: float = 0.5) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    def unlock(self, door: str, seconds: float, reason: str, ref: str) -> float:
        request = {"op": "unlock", "door": door, "seconds": seconds, "reason": reason, "ref": ref}
        reply = self._call(request)
        granted = reply.get("seconds", seconds)
        return float(granted) if isinstance(granted, int | float) else seconds

    def _call(self, request: dict[str, object]) -> dict[str, object]:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(self.timeout)
                conn.connect(str(self.socket_path))
                conn.sendall(json.dumps(request).encode() + b"\n")
                line = conn.makefile("rb").readline(65536)
        except OSError as exc:
            raise LockUnavailable(f"lockctl at {self.socket_path}: {exc}") from exc
        try:
            reply = json.loads(line)
        except ValueError as exc:
            raise LockUnavailable(f"lockctl answered garbage: {line[:80]!r}") from exc
        if not isinstance(reply, dict) or reply.get("ok") is not True:
            raise LockUnavailable(f"lockctl refused: {reply!r}"[:200])
        return reply


def lock_for(config: DeviceConfig) -> LockPort:
    return LockctlPort(config.lock.socket)
