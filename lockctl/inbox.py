"""Remote door commands: lockctl takes them from the device store's ledger.

The sync agent receives a signed command from central and puts it in the
store's command ledger (:mod:`sync.ledger`) with target ``lockctl``; the
agent cannot reach lockctl's socket (least privilege, docs/security.md).
:class:`CommandInbox` claims them every :data:`POLL_SECONDS`, **verifies the
signed body again** with central's public key (a process never trusts a
command only because it is in the table: a compromised agent, or anything
that can write the store, cannot open a door), checks that the row is the
command it claims to be, runs it on the door machines and finishes the row:
``done`` with figures, ``refused`` with a code, or ``failed``; never left
``running``. Rows a crashed lockctl left ``running`` are finished ``failed``
(``interrupted``) at start: an unlock is never run late.

Threads (the controller's rule: one thread owns the doors): this is a task
on the daemon's asyncio loop; every store call (blocking SQLite) goes
through :func:`asyncio.to_thread`, and only the decisions and the door
calls run on the loop, so a busy store never delays a relock. An unusable
store is logged and retried; the doors keep working.

The commands (``docs/lockctl.md``, "Remote commands"): ``door.unlock``
(capped by ``lock.max_unlock_seconds``; refused on an unsynchronised clock,
in lockdown, or with a reason the personal-data guard refuses),
``door.relock``, ``door.lockdown`` and ``door.release`` (kept in the store,
:mod:`lockctl.lockdown`; release refused on an unsynchronised clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contracts.commands import (
    TARGETS,
    CommandError,
    DeviceCommand,
    DoorArgs,
    LockdownArgs,
    UnlockArgs,
    verify,
)
from foundation.privacy import check_event_data
from lockctl.controller import Controller
from lockctl.errors import RequestError
from lockctl.lockdown import STATE_KEY, Lockdown, LockdownStateError, decode, encode, expand
from lockctl.protocol import Lock
from sync.errors import PersonalDataError, SyncError
from sync.ledger import CommandLedger, FinalState, LedgerEntry
from sync.store import Store, open_store

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25
# Commands that make a door more open: refused while the clock is not
# synchronised (a replayed old command would pass an expiry check made on a
# wrong clock). Relock and lockdown only ever close doors: they always run.
NEED_TRUSTED_CLOCK = frozenset({"door.unlock", "door.release"})


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a command ended: the ledger's final state, code, message, detail."""

    state: FinalState
    code: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)


def refused(code: str, message: str) -> Outcome:
    return Outcome("refused", code, message)


class CommandInbox:
    """Claims, verifies and runs lockctl's commands (see the module docstring)."""

    def __init__(
        self,
        controller: Controller,
        keys: dict[str, Ed25519PublicKey],
        *,
        clock_trusted: Callable[[], bool],
        poll_seconds: float = POLL_SECONDS,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.controller = controller
        self.config = controller.config
        self.keys = keys
        self.clock_trusted = clock_trusted
        self.poll_seconds = poll_seconds
        self.wall_clock = wall_clock
        self.ran = 0
        self.last_error: str | None = None
        self._store: Store | None = None
        self._recovered = False
        # Ran but not yet recorded (the store failed), and claimed but not yet run.
        self._unfinished: list[tuple[str, Outcome]] = []
        self._claimed: list[LedgerEntry] = []

    # -- start ---------------------------------------------------------------

    async def restore(self) -> None:
        """Before the socket accepts: the lockdowns kept in the store. A state
        lockctl cannot read is every door in lockdown (fail secure, logged);
        a store it cannot open is no lockdown (logged: check-in, which needs
        the store too, is then down anyway)."""
        try:
            text = await asyncio.to_thread(self._read_state)
        except (SyncError, sqlite3.Error, OSError) as exc:
            self._failed("lockdown state unreadable at start; doors start without lockdown", exc)
            return
        try:
            kept = decode(text)
        except LockdownStateError as exc:
            log.error("lockdown state damaged: every door in lockdown", extra={"error": str(exc)})
            since = datetime.now(UTC).isoformat(timespec="seconds")
            everything = Lockdown("lockdown state damaged", "unreadable", since)
            kept = dict.fromkeys(self.controller.machines, everything)
        self.controller.restore_lockdowns(kept)

    # -- the loop ------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Poll the ledger until ``stop``; a store error is logged and retried."""
        while not stop.is_set():
            try:
                await self.poll_once()
            except (SyncError, sqlite3.Error, OSError) as exc:
                self._failed("command ledger unusable; retrying", exc)
                await asyncio.to_thread(self._close)
            except Exception as exc:  # a bug here must not take the doors down
                log.exception("command inbox pass failed; retrying")
                self.last_error = f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_seconds)
        await asyncio.to_thread(self._close)

    async def poll_once(self) -> None:
        """Finish what is owed, then claim and run every pending command.
        A store error part-way leaves the rest queued here for the next poll
        (each still checked against its expiry when it runs)."""
        ledger = CommandLedger(await asyncio.to_thread(self._open))
        if not self._recovered:
            await asyncio.to_thread(self._interrupt_running, ledger)
            self._recovered = True
        if not self._claimed:
            self._claimed = await asyncio.to_thread(ledger.claim, "lockctl", self.wall_clock())
        while self._unfinished or self._claimed:
            if not self._unfinished:
                entry = self._claimed.pop(0)
                self._unfinished.append((entry.id, await self._outcome(entry)))
            command_id, outcome = self._unfinished[0]
            await asyncio.to_thread(self._finish, ledger, command_id, outcome)
            self._unfinished.pop(0)
        self.last_error = None

    async def _outcome(self, entry: LedgerEntry) -> Outcome:
        try:
            command = self._verified(entry)
            return await self._execute(command)
        except CommandError as exc:
            if exc.code == "expired":  # too late to run: reported as expired, not refused
                return Outcome("expired", exc.code, exc.message)
            return refused(exc.code, exc.message)
        except RequestError as exc:
            return refused(exc.code, exc.message)
        except Exception as exc:  # never leave a command running
            log.exception("command failed", extra={"command": entry.id, "command_name": entry.name})
            return Outcome("failed", "internal", f"{type(exc).__name__} in lockctl; see its log")

    # -- checks and commands -------------------------------------------------

    def _verified(self, entry: LedgerEntry) -> DeviceCommand:
        """The signed body, checked again here; the row must be that command
        (a row whose id differs from its body would let a signed command run
        twice under two ids)."""
        now = datetime.fromtimestamp(self.wall_clock(), UTC)
        command = verify(entry.body, self.keys, device=self.config.device.id, now=now)
        if command.id != entry.id or command.name != entry.name:
            raise CommandError("mismatch", "the ledger row is not the signed command it holds")
        if TARGETS[command.name] != "lockctl":
            raise CommandError("wrong_target", f"{command.name} is not lockctl's to run")
        if command.name in NEED_TRUSTED_CLOCK and not self.clock_trusted():
            raise CommandError(
                "clock_untrusted",
                "the device's clock is not synchronised: a command that opens doors is not run",
            )
        return command

    async def _execute(self, command: DeviceCommand) -> Outcome:
        args = command.parsed_args()
        if isinstance(args, UnlockArgs):
            _check_reason(args.reason)
            granted = self.controller.remote_unlock(
                args.door, args.seconds, command.id, args.reason
            )
            detail = {
                "door": args.door,
                "seconds": granted["seconds"],
                "requested": args.seconds,
                "capped": granted["capped"],
                "relay_energised": granted["relay_energised"],
            }
            capped = f" (capped at {granted['seconds']:g} s)" if granted["capped"] else ""
            return Outcome("done", "ok", f"door {args.door} unlocked{capped}", detail)
        if isinstance(args, LockdownArgs):
            _check_reason(args.reason)
            return await self._lockdown(command, args)
        if isinstance(args, DoorArgs) and command.name == "door.relock":
            doors = self._doors(args.door)
            locked = {d: self.controller.lock(Lock(d)) for d in doors}
            detail = locked[doors[0]] if len(doors) == 1 else {"doors": locked}
            return Outcome("done", "ok", f"locked: {', '.join(doors)}", detail)
        if isinstance(args, DoorArgs) and command.name == "door.release":
            return await self._release(command, args.door)
        raise CommandError("wrong_target", f"{command.name} is not lockctl's to run")

    async def _lockdown(self, command: DeviceCommand, args: LockdownArgs) -> Outcome:
        doors = self._doors(args.door)
        since = datetime.fromtimestamp(self.wall_clock(), UTC).isoformat(timespec="seconds")
        record = Lockdown(args.reason, command.id, since)
        kept = self.controller.lockdowns()
        kept.update({d: record for d in doors if d not in kept})
        # Kept first: a crash after this still finds the doors in lockdown.
        await asyncio.to_thread(self._write_state, kept)
        detail = self.controller.lockdown(doors, record)
        return Outcome("done", "ok", f"lockdown: {', '.join(doors)}", detail)

    async def _release(self, command: DeviceCommand, door: str) -> Outcome:
        doors = self._doors(door)
        kept = {d: x for d, x in self.controller.lockdowns().items() if d not in doors}
        await asyncio.to_thread(self._write_state, kept)
        detail = self.controller.release(doors, command.id)
        return Outcome("done", "ok", f"released: {', '.join(doors)}", detail)

    def _doors(self, door: str) -> list[str]:
        doors = expand(door, self.controller.machines)
        for d in doors:
            if d not in self.controller.machines:
                known = ", ".join(self.controller.machines) or "none configured"
                raise RequestError("unknown_door", f"no door {d!r} on this device (doors: {known})")
        if not doors:
            raise RequestError("unknown_door", "this device has no door")
        return doors

    # -- the store (worker threads only) -------------------------------------

    def _open(self) -> Store:
        if self._store is None:
            path, busy = self.config.store.path, self.config.store.busy_timeout_seconds
            reserve = self.config.store.reserve_bytes
            self._store = open_store(path, busy_timeout=busy, reserve_bytes=reserve)
        return self._store

    def _close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            store.close()

    def _read_state(self) -> str | None:
        return self._open().get_state(STATE_KEY)

    def _write_state(self, kept: dict[str, Lockdown]) -> None:
        self._open().set_state(STATE_KEY, encode(kept))

    def _interrupt_running(self, ledger: CommandLedger) -> None:
        rows = ledger.store.query(
            "SELECT id, name FROM commands WHERE target = 'lockctl' AND state = 'running'"
        )
        for row in rows:
            log.warning(
                "command interrupted by a lockctl stop; not run again",
                extra={"command": row["id"], "command_name": row["name"]},
            )
            message = "lockctl stopped while running it; not run again: check the door's state"
            ledger.finish(row["id"], "failed", "interrupted", message, self.wall_clock())

    def _finish(self, ledger: CommandLedger, command_id: str, outcome: Outcome) -> None:
        ledger.finish(
            command_id, outcome.state, outcome.code, outcome.message, self.wall_clock(),
            detail=outcome.detail,
        )  # fmt: skip
        self.ran += 1
        level = logging.INFO if outcome.state == "done" else logging.WARNING
        log.log(
            level,
            "remote command finished",
            extra={"command": command_id, "state": outcome.state, "code": outcome.code},
        )

    def _failed(self, message: str, exc: Exception) -> None:
        text = f"{type(exc).__name__}: {exc}"
        if text != self.last_error:
            log.error(message, extra={"error": text})
        self.last_error = text


def _check_reason(reason: str) -> None:
    """The staff's reason goes into a door event: the personal-data guard's."""
    try:
        check_event_data({"staff_reason": reason})
    except PersonalDataError as exc:
        raise CommandError("bad_reason", f"reason refused: {exc.reason}") from None
