"""The sync agent's side of remote commands (docs/protocol.md, "Commands"):
taking them in, answering, reporting results.

:class:`CommandDesk` lives on the agent loop's thread. For every message on
``devices/{d}/commands`` (:meth:`CommandDesk.on_command`) it

1. verifies it (:class:`Verifier`: signature, device, time, arguments, and
   the clock: on a clock NTP has not synchronised only the fail-safe commands
   of :data:`CLOCK_INDEPENDENT` run, their time window unjudged, since the
   device cannot judge it; everything else is refused ``clock_untrusted``);
2. answers a repeated id with what the ledger holds for it (``delivered``
   while it runs, else its final result): a command never runs twice;
3. puts a new one in the ledger for its target process and answers
   ``delivered``; a refused one is kept in the ledger as refused (or
   expired) when its id and name are usable, and reported like any other.

Answers go to this device's results topic: the MQTT v5 response topic is
used only when it is that topic (any other is central's mistake or a forgery,
and the ACL would refuse it anyway), with the correlation data echoed.

:meth:`CommandDesk.due_reports` gives every finished, unreported ledger
entry (whichever process finished it) as a result to publish; the agent
calls :meth:`CommandDesk.reported` when the broker acknowledged it (PUBACK),
which records the ``device.command`` event and marks the entry reported. The
ledger is durable, so results produced while offline go out after the next
connection.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from contracts.commands import (
    TARGETS,
    CommandError,
    DeviceCommand,
    peek,
    result_payload,
    verify,
)
from foundation.clock import clock_is_synchronised
from foundation.privacy import check_event_data
from sync.errors import PersonalDataError, StoreError
from sync.ledger import CommandLedger, LedgerEntry
from sync.outbox import EventError, Outbox

log = logging.getLogger(__name__)

# What may run on a clock that is not synchronised: nothing here opens a
# door or stops a service, so a replay of an old one does no harm.
CLOCK_INDEPENDENT = frozenset({"door.relock", "door.lockdown", "diagnostics.collect"})
EVENT_TYPE = "device.command"
HOUSEKEEPING_SECONDS = 1.0
PRUNE_SECONDS = 3600.0
MAX_CORRELATION_BYTES = 256


@dataclass(frozen=True, slots=True)
class Reply:
    """A result to publish; ``report_id``: mark that entry reported on PUBACK."""

    payload: bytes
    correlation: bytes
    report_id: str = ""


class Verifier:
    """:func:`contracts.commands.verify` with the device's clock policy."""

    def __init__(
        self,
        keys: dict[str, Ed25519PublicKey],
        device: str,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock_trusted: Callable[[], bool] = clock_is_synchronised,
    ) -> None:
        self.keys = keys
        self.device = device
        self.now = now
        self.clock_trusted = clock_trusted

    def verify(self, payload: bytes) -> tuple[DeviceCommand, float]:
        """The command and when the device takes it as expired (epoch
        seconds, by this device's clock); raises :class:`CommandError`."""
        now = self.now()
        if self.clock_trusted():
            command = verify(payload, self.keys, device=self.device, now=now)
            return command, command.expires_at.timestamp()
        # An unsynchronised clock cannot judge the time window: check the rest
        # as of the command's own issue time, then apply the clock policy.
        command = verify(payload, self.keys, device=self.device, now=_issued_at(payload) or now)
        if command.name not in CLOCK_INDEPENDENT:
            raise CommandError(
                "clock_untrusted", "the device's clock is not synchronised: only relock,"
                " lockdown and diagnostics run until it is",
            )  # fmt: skip
        lifetime = (command.expires_at - command.issued_at).total_seconds()
        return command, now.timestamp() + lifetime


def _issued_at(payload: bytes) -> datetime | None:
    try:
        value = json.loads(payload).get("issued_at")
        when = datetime.fromisoformat(value)
    except (ValueError, TypeError, AttributeError, RecursionError):
        return None
    return when if when.tzinfo is not None else None


def _reply_to(correlation: bytes | None, command_id: str) -> bytes:
    # Echoed as received, unless absent or long (an answer must stay small).
    if correlation is None or len(correlation) > MAX_CORRELATION_BYTES:
        return command_id.encode()
    return correlation


def result_of(entry: LedgerEntry, device: str) -> bytes:
    """The :class:`~contracts.commands.CommandResult` of a ledger entry."""
    if entry.finished is None:
        state, at = "delivered", entry.received
    else:
        state, at = entry.state, entry.finished
    detail = entry.detail
    try:
        check_event_data(detail)
    except PersonalDataError:
        log.error("result detail withheld: personal data", extra={"command": entry.id})
        detail = {}
    when = datetime.fromtimestamp(at, UTC)
    try:
        return result_payload(
            command_id=entry.id, device=device, name=entry.name, state=state,  # type: ignore[arg-type]
            code=entry.code or state, message=entry.message, at=when, detail=detail,
        )  # fmt: skip
    except ValidationError:
        # A process recorded a code or detail outside the contract.
        log.error("result outside the contract, sent bare", extra={"command": entry.id})
        return result_payload(
            command_id=entry.id, device=device, name=entry.name, state=state,  # type: ignore[arg-type]
            code=state, message="", at=when,
        )  # fmt: skip


class CommandDesk:
    """See the module docstring; every method runs on the agent's thread."""

    def __init__(
        self,
        ledger: CommandLedger,
        outbox: Outbox,
        verifier: Verifier,
        results_topic: str,
        *,
        on_received: Callable[[str], None] = lambda _target: None,
    ) -> None:
        self.ledger = ledger
        self.outbox = outbox
        self.verifier = verifier
        self.device = verifier.device
        self.results_topic = results_topic
        self.on_received = on_received
        self._next_housekeeping = 0.0
        self._next_prune = 0.0

    def on_command(
        self, payload: bytes, response_topic: str | None, correlation: bytes | None
    ) -> list[Reply]:
        """Take one command message; the answers to publish (possibly none)."""
        if response_topic and response_topic != self.results_topic:
            log.warning("command's response topic ignored", extra={"topic": response_topic[:200]})
        try:
            command, expires = self.verifier.verify(payload)
        except CommandError as exc:
            return self._refuse(payload, exc, correlation)
        reply_to = _reply_to(correlation, command.id)
        existing = self.ledger.get(command.id)
        if existing is not None:
            return [self._repeat(existing, reply_to, "")]
        target = TARGETS[command.name]
        now = time.time()
        if not self.ledger.receive(
            command.id, command.name, target, payload, expires=expires, now=now
        ):
            again = self.ledger.get(command.id)
            return [self._repeat(again, reply_to, "")] if again else []
        log.info(
            "command received",
            extra={"command": command.id, "command_name": command.name, "target": target,
                   "door": command.args.get("door"), "issued_by": command.issued_by},
        )  # fmt: skip
        self.on_received(target)
        entry = self.ledger.get(command.id)
        return [Reply(result_of(entry, self.device), reply_to)] if entry else []

    def _refuse(self, payload: bytes, exc: CommandError, correlation: bytes | None) -> list[Reply]:
        command_id, name = peek(payload)
        log.warning(
            "command refused",
            extra={"command": command_id or None, "command_name": name or None, "code": exc.code,
                   "reason": exc.message[:200], "bytes": len(payload)},
        )  # fmt: skip
        if not command_id or not name:
            return []  # nothing to answer against: no usable id or name
        reply_to = _reply_to(correlation, command_id)
        existing = self.ledger.get(command_id)
        if existing is not None:
            return [self._repeat(existing, reply_to, exc.code)]
        state: Literal["refused", "expired"] = "expired" if exc.code == "expired" else "refused"
        self.ledger.record_refusal(
            command_id, name, payload, code=exc.code, message=exc.message, now=time.time(),
            state=state,
        )  # fmt: skip
        entry = self.ledger.get(command_id)
        # Final already: tracked like a report, so it is not sent twice.
        return [Reply(result_of(entry, self.device), reply_to, entry.id)] if entry else []

    def _repeat(self, entry: LedgerEntry, reply_to: bytes, code: str) -> Reply:
        # A repeated id (central's redelivery, a replay): the stored answer.
        log.info(
            "command id seen before: stored result sent",
            extra={"command": entry.id, "command_name": entry.name, "state": entry.state,
                   "code": code or None},
        )  # fmt: skip
        return Reply(result_of(entry, self.device), reply_to)

    def due_reports(self, in_flight: Collection[str]) -> list[Reply]:
        """Finished entries central has not confirmed (minus those in flight
        and those whose attachment is still to be uploaded)."""
        return [
            Reply(result_of(entry, self.device), entry.id.encode(), report_id=entry.id)
            for entry in self.ledger.unreported()
            if entry.id not in in_flight and entry.attachment is None
        ]

    def reported(self, command_id: str) -> None:
        """The broker has the final result: record the event, mark it reported.
        (Event first: a crash in between repeats the event, never loses it.)"""
        entry = self.ledger.get(command_id)
        if entry is None or entry.finished is None:
            return
        self._record_event(entry)
        self.ledger.mark_reported(command_id)
        log.info(
            "command result reported",
            extra={"command": entry.id, "command_name": entry.name, "state": entry.state,
                   "code": entry.code},
        )  # fmt: skip

    def _record_event(self, entry: LedgerEntry) -> None:
        data: dict[str, Any] = {
            "command": entry.id,
            "action": entry.name,
            "state": entry.state,
            "code": entry.code or entry.state,
        }
        try:
            signed = DeviceCommand.model_validate_json(entry.body)
            data["issued_by"] = signed.issued_by
            door = signed.args.get("door")
            if isinstance(door, str):
                data["door"] = door
        except ValidationError:
            pass  # a refused, malformed command: no issuer to name
        try:
            check_event_data(data)
        except PersonalDataError as exc:
            log.error("command event reduced: personal data", extra={"where": exc.args[0]})
            data = {k: data[k] for k in ("command", "action", "state")}
        try:
            self.outbox.append(EVENT_TYPE, data)
        except (EventError, PersonalDataError, StoreError) as exc:
            # A full disk refuses the event: central has the result itself
            # (the audit log), so the command is still marked reported.
            log.error("command event not recorded", extra={"command": entry.id, "error": str(exc)})

    def housekeeping(self, monotonic: float) -> None:
        """Expire commands no process took in time; now and then forget old ones."""
        if monotonic < self._next_housekeeping:
            return
        self._next_housekeeping = monotonic + HOUSEKEEPING_SECONDS
        now = time.time()
        try:
            expired = self.ledger.expire_unclaimed(now)
            if expired:
                log.warning("commands expired unclaimed", extra={"count": expired})
            if monotonic >= self._next_prune:
                self._next_prune = monotonic + PRUNE_SECONDS
                pruned = self.ledger.prune(now)
                if pruned:
                    log.info("command ledger pruned", extra={"count": pruned})
        except StoreError as exc:
            # Housekeeping must never stop the agent's round (events still
            # drain on a full disk): tried again at the next one.
            log.warning("command ledger housekeeping failed", extra={"error": str(exc)})
