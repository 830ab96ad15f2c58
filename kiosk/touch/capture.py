"""Remote screenshots (``screen.capture``): the touchscreen takes its own
commands from the device store's command ledger (:mod:`sync.ledger`).

The sync agent verifies a command from central and puts it in the ledger
with target ``kiosk``; every second (the app's clock, :mod:`kiosk.touch.app`)
:class:`ScreenCommands` claims them, **verifies each signed body again**
(a process never trusts a command only because it is in the table) and
takes a PNG of the window only while the screen shows nobody's data:
:data:`CAPTURE_SCREENS` and :func:`busy_screen` are the one definition of
that. Otherwise the command is refused ``screen_busy`` with the kind of
screen shown (its name, never its content). The PNG goes into the ledger
entry's ``attachment``; the agent uploads it to central.

Threads: the store is blocking SQLite, so claims and finishes run on one
worker thread of this object's own; the decisions and the screenshot run on
Kivy's main thread (``post`` hands results back there, ``capture`` takes the
PNG after the next frame is drawn). A command is never left ``running``:
any failure finishes it ``failed``, and entries a stopped touchscreen left
``running`` are finished ``failed`` (``interrupted``) on the first pass.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contracts.commands import MAX_ATTACHMENT_BYTES, TARGETS, CommandError, verify
from sync.config import DeviceConfig
from sync.errors import ConfigError
from sync.ledger import CommandLedger, FinalState, LedgerEntry, load_command_keys
from sync.store import Store, open_store

log = logging.getLogger(__name__)

# The screens that show nobody's data, by name (check-in and issuance both
# call their waiting screen "attract": facility, clock, "tap your card").
# The language screen, a keypad, a PIN, a result or a staff call belong to
# the person at the screen: never captured.
CAPTURE_SCREENS = frozenset({"attract"})
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def busy_screen(screen: str, mode_open: bool, countdown_shown: bool) -> str | None:
    """None when a screenshot may be taken now; otherwise the kind of screen
    that is shown, for the refusal's message."""
    if mode_open:
        return "card enrolment"
    if screen not in CAPTURE_SCREENS:
        return screen
    if countdown_shown:
        return "idle countdown"
    return None


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's header (ValueError if it is not one)."""
    if len(png) < 24 or not png.startswith(PNG_SIGNATURE) or png[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


@dataclass(frozen=True, slots=True)
class Finish:
    """A command's outcome, as the ledger records it."""

    command_id: str
    state: FinalState
    code: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)
    attachment: bytes | None = None


ScreenState = Callable[[], tuple[str, bool, bool]]  # screen, mode open, countdown shown
Capture = Callable[[Callable[[bytes], None]], None]  # calls back with the PNG
Post = Callable[[Callable[[], None]], None]  # runs a call on Kivy's main thread


class ScreenCommands:
    """The touchscreen's command inbox (see the module docstring)."""

    def __init__(
        self,
        store_path: Path,
        device: str,
        keys: dict[str, Ed25519PublicKey],
        *,
        busy_timeout: float = 10.0,
        reserve_bytes: int = 0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.store_path = store_path
        self.reserve_bytes = reserve_bytes
        self.device = device
        self.keys = keys
        self.busy_timeout = busy_timeout
        self.wall_clock = wall_clock
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="kiosk-commands")
        self._store: Store | None = None
        self._recovered = False
        self._busy = threading.Event()  # a pass is under way: the next tick skips
        self.last_error: str | None = None
        self._closed = False

    @classmethod
    def for_config(cls, config: DeviceConfig) -> ScreenCommands:
        return cls(
            config.store.path,
            config.device.id,
            command_keys(config),
            busy_timeout=config.store.busy_timeout_seconds,
            reserve_bytes=config.store.reserve_bytes,
        )

    # -- Kivy's main thread -----------------------------------------------------

    def tick(self, state: ScreenState, capture: Capture, post: Post) -> None:
        """One pass (the app's one-second clock); skipped while one runs."""
        if self._busy.is_set() or self._closed:
            return
        self._busy.set()
        future = self._executor.submit(self._claim)
        future.add_done_callback(lambda f: post(lambda: self._claimed(f, state, capture)))

    def _claimed(
        self, future: Future[list[LedgerEntry]], state: ScreenState, capture: Capture
    ) -> None:
        try:
            entries = future.result()
        except Exception as exc:  # the store: logged (once), retried next tick
            if f"{exc}" != self.last_error:
                log.error("command ledger unusable; retrying", extra={"error": f"{exc}"})
            self.last_error = f"{exc}"
            self._busy.clear()
            return
        self.last_error = None
        if not entries:
            self._busy.clear()
            return
        finishes: list[Finish] = []
        wanted: list[LedgerEntry] = []
        for entry in entries:
            refusal = self._check(entry, state)
            (wanted.append(entry) if refusal is None else finishes.append(refusal))
        if not wanted:
            self._finish_all(finishes)
            return

        def shot(png: bytes) -> None:
            self._finish_all(finishes + [self._shot(e, png, state) for e in wanted])

        try:
            capture(shot)
        except Exception:
            log.exception("screenshot failed")
            message = "the screenshot failed; see the touchscreen's log"
            failed = [Finish(e.id, "failed", "capture_failed", message) for e in wanted]
            self._finish_all(finishes + failed)

    def _check(self, entry: LedgerEntry, state: ScreenState) -> Finish | None:
        """None when the entry is a genuine screen.capture and the screen is idle."""
        now = datetime.fromtimestamp(self.wall_clock(), UTC)
        try:
            command = verify(entry.body, self.keys, device=self.device, now=now)
            if command.id != entry.id or command.name != entry.name:
                raise CommandError("mismatch", "the ledger row is not the signed command it holds")
            if TARGETS[command.name] != "kiosk":
                raise CommandError("wrong_target", f"{command.name} is not the touchscreen's")
        except CommandError as exc:
            final: FinalState = "expired" if exc.code == "expired" else "refused"
            return Finish(entry.id, final, exc.code, exc.message)
        return _busy_refusal(entry.id, state)

    def _shot(self, entry: LedgerEntry, png: bytes, state: ScreenState) -> Finish:
        # Checked again for the frame captured: a tap may have come in between.
        busy = _busy_refusal(entry.id, state)
        if busy is not None:
            return busy
        try:
            width, height = png_size(png)
        except ValueError:
            return Finish(entry.id, "failed", "capture_failed", "the screenshot is not a PNG")
        if len(png) > MAX_ATTACHMENT_BYTES["screen.capture"]:
            return Finish(entry.id, "failed", "too_large", f"screenshot of {len(png)} bytes")
        screen = state()[0]
        detail = {"screen": screen, "width": width, "height": height, "bytes": len(png)}
        return Finish(entry.id, "done", "ok", f"{width}x{height} PNG", detail, png)

    def _finish_all(self, finishes: list[Finish]) -> None:
        if self._closed:  # stopping: left running, finished interrupted at the next start
            return
        future = self._executor.submit(self._record, finishes)
        future.add_done_callback(lambda _f: self._busy.clear())

    # -- the worker thread -------------------------------------------------------

    def _ledger(self) -> CommandLedger:
        if self._store is None:
            self._store = open_store(
                self.store_path, busy_timeout=self.busy_timeout, reserve_bytes=self.reserve_bytes
            )
        return CommandLedger(self._store)

    def _claim(self) -> list[LedgerEntry]:
        ledger = self._ledger()
        if not self._recovered:
            rows = ledger.store.query(
                "SELECT id FROM commands WHERE target = 'kiosk' AND state = 'running'"
            )
            for row in rows:
                ledger.finish(
                    row["id"], "failed", "interrupted",
                    "the touchscreen stopped while taking it", self.wall_clock(),
                )  # fmt: skip
            self._recovered = True
        return ledger.claim("kiosk", self.wall_clock())

    def _record(self, finishes: list[Finish]) -> None:
        try:
            ledger = self._ledger()
            for f in finishes:
                ledger.finish(
                    f.command_id, f.state, f.code, f.message, self.wall_clock(),
                    detail=f.detail, attachment=f.attachment,
                )  # fmt: skip
                log.info(
                    "remote command finished",
                    extra={"command": f.command_id, "state": f.state, "code": f.code},
                )
        except Exception:
            # Left running: the next start finishes it failed (interrupted).
            log.exception("command outcome not recorded")

    def close(self) -> None:
        """At the app's stop (Kivy may call on_stop twice): the store closed,
        the worker ended after what it was doing."""
        if self._closed:
            return
        self._closed = True
        self._executor.submit(self._close_store)
        self._executor.shutdown(wait=True)

    def _close_store(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            store.close()


def _busy_refusal(command_id: str, state: ScreenState) -> Finish | None:
    screen, mode_open, countdown = state()
    kind = busy_screen(screen, mode_open, countdown)
    if kind is None:
        return None
    message = f"the screen is in use ({kind}): screenshots only on the attract screen"
    return Finish(command_id, "refused", "screen_busy", message)


def command_keys(config: DeviceConfig) -> dict[str, Ed25519PublicKey]:
    """Central's command keys; a missing or bad file refuses every command."""
    try:
        return load_command_keys(config.commands.public_key_file)
    except ConfigError as exc:
        log.error("command key unusable: remote commands refused", extra={"error": str(exc)})
        return {}
