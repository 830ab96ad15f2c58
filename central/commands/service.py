"""Issuing commands and following them: the table ``device_commands``.

:class:`CommandService` is what the dashboard, the API and configuration
push call: :meth:`CommandService.issue` checks (:mod:`.rules`), signs
(:func:`contracts.commands.sign`), stores the command ``queued`` and
records ``command.issue`` in the audit log in the same transaction, then
wakes the relay (:mod:`.relay`), which publishes it. A refusal is recorded
too (outcome ``refused``, the code as reason) and raised as
:class:`~central.commands.errors.CommandRefused`.

The audit log keeps the command's id, name, device and the plain arguments
(door, seconds, service, version); never the staff-written reason (it stays
with the command, where it can be corrected, not in the append-only log).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import ValidationError
from sqlalchemy import and_, desc, or_, select, update
from sqlalchemy.engine import Connection

from central.audit import Outcome, record, record_now
from central.commands.errors import CommandRefused, NotConfigured
from central.commands.rules import (
    FACILITY_COMMANDS,
    DeviceFacts,
    audited_args,
    check_issuer,
    check_request,
)
from central.db.engine import Database, aware, utc
from central.db.tables import device_command_files, device_commands, devices, rooms
from contracts.commands import ARGS, FINAL_STATES, CommandResult, sign
from foundation.errors import PersonalDataError
from foundation.privacy import check_event_data

log = logging.getLogger(__name__)

STATES = ("queued", "sent", "delivered", "done", "failed", "refused", "expired")
UNDELIVERED = ("queued", "sent")
NOT_CONFIGURED = "remote commands are not configured (commands.signing_key_file)"
# Central's own "expired": nothing was heard from the device by the expiry.
# Only a presumption -- the device may have taken it just in time (by its
# clock) and its answer still comes -- so a device's result replaces it.
NOT_DELIVERED = "not_delivered"


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key of a PEM file; ``ValueError``/``OSError`` otherwise."""
    key = load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


@dataclass(frozen=True)
class Outgoing:
    """A signed command the relay has to publish."""

    id: str
    device: str
    payload: bytes
    expires_at: datetime


def _row(row: Any) -> dict[str, Any]:
    out = dict(row._mapping)
    for key in ("issued_at", "expires_at", "sent_at", "delivered_at", "finished_at", "updated_at"):
        if out.get(key) is not None:
            out[key] = aware(out[key])
    out.pop("payload", None)
    return out


def accepts_every_door(name: str, args: Mapping[str, Any]) -> bool:
    """Whether the contract lets ``name`` say ``door: "*"``."""
    try:
        ARGS[name].model_validate(dict(args, door="*"))
    except ValidationError:
        return False
    return True


class CommandService:
    """``key``: central's signing key (None: not configured); ``wake`` tells
    the relay there is something to publish (any thread)."""

    def __init__(
        self, db: Database, key: Ed25519PrivateKey | None, *, max_unlock_seconds: float = 60,
        default_lifetime: timedelta = timedelta(minutes=5),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        wake: Callable[[], None] = lambda: None,
    ) -> None:  # fmt: skip
        self.db, self.key, self.now, self.wake = db, key, now, wake
        self.max_unlock_seconds, self.default_lifetime = max_unlock_seconds, default_lifetime
        # Called (on the relay's thread) after a device's final result is
        # stored: configuration push records what became of its push.
        self.result_hooks: list[Callable[[CommandResult], None]] = []

    @property
    def configured(self) -> bool:
        return self.key is not None

    # -- issuing -------------------------------------------------------------

    def facts(self, device: str) -> DeviceFacts:
        with self.db.read() as conn:
            facility = conn.execute(
                select(devices.c.facility).where(devices.c.id == device)
            ).first()
            if facility is None or facility.facility is None:
                return DeviceFacts(device, False)
            doors = conn.execute(
                select(rooms.c.door).where(rooms.c.facility == facility.facility).distinct()
            ).scalars().all()  # fmt: skip
        return DeviceFacts(device, True, facility.facility, frozenset(doors) if doors else None)

    def check(
        self, device: str, name: str, args: Mapping[str, Any], *, issuer: str, source: str,
        lifetime: timedelta | None = None,
    ) -> tuple[DeviceFacts, dict[str, Any], timedelta]:  # fmt: skip
        """Everything :meth:`issue` checks, without sending (the dashboard's
        confirmation page): (facts, arguments, lifetime), or
        :class:`CommandRefused`, already audited."""
        try:
            check_issuer(issuer, name)
            if self.key is None:
                raise NotConfigured(NOT_CONFIGURED)
            facts = self.facts(device)
            life = lifetime or self.default_lifetime
            parsed = check_request(facts, name, args, lifetime=life,
                                   max_unlock_seconds=self.max_unlock_seconds)  # fmt: skip
        except CommandRefused as exc:
            log.warning("command refused", extra={"device": device, "command": name,
                                                  "code": exc.code, "issuer": issuer})  # fmt: skip
            record_now(self.db, issuer, "command.issue", f"device:{device}"[:80], source=source,
                       outcome=Outcome.REFUSED, reason=exc.code,
                       detail={"command": name[:40], **audited_args(args)})  # fmt: skip
            raise
        return facts, parsed, life

    def issue(
        self, device: str, name: str, args: Mapping[str, Any], *, issuer: str, source: str,
        lifetime: timedelta | None = None,
    ) -> str:  # fmt: skip
        """Sign and queue one command; its id. :class:`CommandRefused` (already
        audited) when it must not be sent."""
        checked = self.check(device, name, args, issuer=issuer, source=source, lifetime=lifetime)
        command_id = self._queue(device, name, checked, issuer=issuer, source=source)
        self.wake()
        return command_id

    def _queue(
        self, device: str, name: str, checked: tuple[DeviceFacts, dict[str, Any], timedelta],
        *, issuer: str, source: str,
    ) -> str:  # fmt: skip
        """Sign a checked command, store it ``queued`` and audit it (one transaction)."""
        assert self.key is not None  # check() refused otherwise
        facts, parsed, life = checked
        command_id, issued_at = str(uuid.uuid4()), self.now().astimezone(UTC)
        payload = sign(self.key, command_id=command_id, device=device, name=name, args=parsed,
                       issued_by=issuer, issued_at=issued_at, lifetime=life)  # fmt: skip
        with self.db.write() as conn:
            conn.execute(device_commands.insert().values(
                id=command_id, device=device, facility=facts.facility, name=name, args=parsed,
                issued_by=issuer, source=source[:64], payload=payload,
                issued_at=utc(issued_at), expires_at=utc(issued_at + life), state="queued",
                code="", message="", detail={}, updated_at=utc(issued_at)))  # fmt: skip
            record(conn, issuer, "command.issue", f"device:{device}"[:80], source=source,
                   detail={"command_id": command_id, "command": name,
                           **audited_args(parsed)})  # fmt: skip
        log.info("command issued", extra={"device": device, "command": name, "id": command_id,
                                          "issuer": issuer})  # fmt: skip
        return command_id

    def issue_facility(
        self, facility: str, name: str, args: Mapping[str, Any], *, issuer: str, source: str
    ) -> list[str]:
        """One command per registered device of the facility, for every door:
        with ``*`` where the command takes it (lockdown), else once per door
        central knows (a device without that door refuses it)."""
        if name not in FACILITY_COMMANDS:
            raise CommandRefused("bad_args", f"{name} is not a facility command")
        with self.db.read() as conn:
            members = conn.execute(select(devices.c.id).where(devices.c.facility == facility)
                                   .order_by(devices.c.id)).scalars().all()  # fmt: skip
            doors = sorted(set(conn.execute(select(rooms.c.door).where(
                rooms.c.facility == facility)).scalars().all()))  # fmt: skip
        every = accepts_every_door(name, args)
        if not members or (not every and not doors):
            what = "registered devices" if not members else "known doors"
            record_now(self.db, issuer, "command.issue", f"facility:{facility}"[:80],
                       source=source, outcome=Outcome.REFUSED, reason="no_devices",
                       detail={"command": name})  # fmt: skip
            raise CommandRefused("no_devices", f"facility {facility!r} has no {what}")
        # "*" where the contract takes it (lockdown), else each door central knows.
        targets = [dict(args, door="*")] if every else [dict(args, door=d) for d in doors]
        # Every command is checked before any is queued: nothing half-issued.
        checked = [(device, self.check(device, name, target, issuer=issuer, source=source))
                   for device in members for target in targets]  # fmt: skip
        ids = [self._queue(device, name, c, issuer=issuer, source=source) for device, c in checked]
        self.wake()
        return ids

    # -- reading -------------------------------------------------------------

    def get(self, command_id: str) -> dict[str, Any] | None:
        query = select(device_commands, device_command_files.c.content_type.label("file_type"),
                       device_command_files.c.sha256.label("file_sha256")).select_from(
            device_commands.outerjoin(device_command_files,
                                      device_command_files.c.command_id == device_commands.c.id)
        ).where(device_commands.c.id == command_id)  # fmt: skip
        with self.db.read() as conn:
            row = conn.execute(query).first()
        return _row(row) if row is not None else None

    def listing(self, *, device: str = "", facility: str = "", limit: int = 50,
                ids: list[str] | None = None) -> list[dict[str, Any]]:  # fmt: skip
        c = device_commands.c
        query = select(device_commands, device_command_files.c.content_type.label("file_type"),
                       device_command_files.c.sha256.label("file_sha256")).select_from(
            device_commands.outerjoin(device_command_files,
                                      device_command_files.c.command_id == c.id)
        ).order_by(desc(c.issued_at), c.id).limit(limit)  # fmt: skip
        if device:
            query = query.where(c.device == device)
        if facility:
            query = query.where(c.facility == facility)
        if ids is not None:
            query = query.where(c.id.in_(ids))
        with self.db.read() as conn:
            return [_row(r) for r in conn.execute(query)]

    def file(self, command_id: str) -> tuple[str, bytes] | None:
        f = device_command_files.c
        with self.db.read() as conn:
            row = conn.execute(select(f.content_type, f.content)
                               .where(f.command_id == command_id)).first()  # fmt: skip
        return (str(row.content_type), bytes(row.content)) if row is not None else None

    # -- the relay's side ----------------------------------------------------

    def to_publish(self, *, device: str | None = None,
                   include_sent: bool = False) -> list[Outgoing]:  # fmt: skip
        """Unexpired commands still to send: ``queued`` ones, and ``sent``
        ones too when a device came back."""
        c, now = device_commands.c, utc(self.now())
        states = UNDELIVERED if include_sent else ("queued",)
        query = select(c.id, c.device, c.payload, c.expires_at).where(
            c.state.in_(states), c.expires_at > now)  # fmt: skip
        if device is not None:
            query = query.where(c.device == device)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(c.issued_at)).all()
        return [Outgoing(r.id, r.device, bytes(r.payload), aware(r.expires_at)) for r in rows]

    def mark_sent(self, command_id: str) -> bool:
        c, now = device_commands.c, utc(self.now())
        with self.db.write() as conn:
            return bool(conn.execute(
                update(device_commands).where(c.id == command_id, c.state == "queued")
                .values(state="sent", sent_at=now, updated_at=now)).rowcount)  # fmt: skip

    def expire_due(self) -> list[str]:
        """Undelivered commands past their expiry become ``expired`` (audited)."""
        c, now = device_commands.c, utc(self.now())
        due = c.state.in_(UNDELIVERED) & (c.expires_at <= now)
        with self.db.read() as conn:  # the relay asks twice a second: write only when due
            if conn.execute(select(c.id).where(due).limit(1)).first() is None:
                return []
        with self.db.write() as conn:
            rows = conn.execute(
                update(device_commands).where(c.state.in_(UNDELIVERED), c.expires_at <= now)
                .values(state="expired", code=NOT_DELIVERED, finished_at=now, updated_at=now,
                        message="expired before the device took it")
                .returning(c.id, c.device, c.name, c.issued_by)
            ).all()  # fmt: skip
            for r in rows:
                record(conn, r.issued_by, "command.expire", f"device:{r.device}"[:80],
                       source="central", outcome=Outcome.FAILED, reason="expired",
                       detail={"command_id": r.id, "command": r.name})  # fmt: skip
        for r in rows:
            log.warning("command expired undelivered", extra={"id": r.id, "device": r.device})
        return [r.id for r in rows]

    def apply_result(self, topic_device: str, result: CommandResult) -> str:
        """A device's answer: ``applied``, or why it was ignored (``unknown``,
        ``wrong_device``, ``stale``: a final state never changes)."""
        c, now = device_commands.c, utc(self.now())
        if result.device != topic_device:
            return "wrong_device"
        with self.db.write() as conn:
            row = conn.execute(select(c.device, c.state, c.code, c.name, c.issued_by)
                               .where(c.id == result.id)).first()  # fmt: skip
            if row is None:
                if result.state in ("refused", "expired"):
                    # A command central never issued reached the device and
                    # was refused there: a forgery or a replay from elsewhere.
                    record(conn, f"device:{topic_device}"[:80], "command.refused_unknown",
                           f"device:{topic_device}"[:80], outcome=Outcome.REFUSED,
                           reason=result.code, detail={"command_id": result.id,
                                                       "command": result.name})  # fmt: skip
                return "unknown"
            if row.device != topic_device:
                return "wrong_device"
            presumed = row.state == "expired" and row.code == NOT_DELIVERED
            if (row.state in FINAL_STATES and not presumed) or (
                    result.state == "delivered" and row.state == "delivered"):  # fmt: skip
                return "stale"
            self._store_result(conn, result, row, now)
        if result.state in FINAL_STATES:
            for hook in self.result_hooks:
                try:
                    hook(result)
                except Exception:  # a subscriber's bug must not lose the relay's round
                    log.exception("command result hook failed", extra={"id": result.id})
        return "applied"

    @staticmethod
    def _store_result(conn: Connection, result: CommandResult, row: Any, now: datetime) -> None:
        c = device_commands.c
        message, detail = result.message[:500], result.detail
        try:  # a device bug (or a compromised device) must not store personal data here
            check_event_data({"message": message, "detail": detail})
        except PersonalDataError as exc:
            log.warning("command result withheld by the personal-data guard",
                        extra={"id": result.id, "where": exc.where})  # fmt: skip
            message, detail = "", {"withheld": exc.where}
        values: dict[str, Any] = {"state": result.state, "code": result.code,
                                  "message": message, "detail": detail,
                                  "updated_at": now}  # fmt: skip
        if result.state == "delivered":
            values.update(delivered_at=now, finished_at=None)
        else:
            values["finished_at"] = now
        open_ = or_(c.state.not_in(tuple(FINAL_STATES)),
                    and_(c.state == "expired", c.code == NOT_DELIVERED))  # fmt: skip
        conn.execute(update(device_commands).where(c.id == result.id, open_).values(**values))
        if result.state in FINAL_STATES:
            outcome = {"done": Outcome.OK, "refused": Outcome.REFUSED}.get(
                result.state, Outcome.FAILED
            )
            record(conn, row.issued_by, "command.result", f"device:{result.device}"[:80],
                   source=f"device:{result.device}", outcome=outcome, reason=result.code,
                   detail={"command_id": result.id, "command": row.name,
                           "state": result.state})  # fmt: skip

    # -- attachments -----------------------------------------------------------

    def store_file(self, command_id: str, content_type: str, content: bytes,
                   sha256: str) -> bool:  # fmt: skip
        """Keep an upload; False when the command has one already."""
        stmt = self.db.insert(device_command_files).values(
            command_id=command_id, content_type=content_type, content=content, sha256=sha256,
            received_at=utc(self.now()))  # fmt: skip
        with self.db.write() as conn:
            # Two uploads at once: the primary key lets exactly one in.
            done = conn.execute(stmt.on_conflict_do_nothing(
                index_elements=[device_command_files.c.command_id]
            ).returning(device_command_files.c.command_id)).first()  # fmt: skip
        return done is not None
