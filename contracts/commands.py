"""Remote commands: central -> device, signed, each run at most once.

A command travels on ``kiosk/v1/devices/{d}/commands`` (QoS 1, never
retained) as a :class:`DeviceCommand`. Central signs it with its Ed25519
command key; the device, and again the process that runs it (lockctl for a
door, the touchscreen for a screenshot), checks the signature with the
public key it was provisioned with, that the command names this device, that
it has not expired, and that its id was never seen before. The device answers
on ``kiosk/v1/devices/{d}/results`` (the MQTT v5 response topic central set,
with the command id as correlation data) with :class:`CommandResult` messages:
``delivered`` when it took the command, then one final state.

The signed bytes are :func:`signing_bytes`: a fixed domain line, then the
command's JSON object without ``signature``, keys sorted, compact, UTF-8.
They are computed from the JSON as received (not from the parsed model), so
a timestamp's spelling never breaks a signature. ``docs/protocol.md``
("Commands") documents all of it with an example.

Everything here is pure (no I/O): central, the sync agent, lockctl and the
touchscreen share it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from contracts.errors import ContractError
from contracts.mqtt import MAX_PAYLOAD_BYTES, CallId, Identifier, Message

DOMAIN = b"city-kiosk/command/v1\n"
# A command lives at most this long: a device may forget an id once its
# command has expired, so its ledger stays small and a replay still fails.
MAX_LIFETIME = timedelta(hours=24)
# A command issued further ahead of the device's clock than this is refused
# (a wrong clock on one side); expiry is judged by the device's clock.
MAX_CLOCK_SKEW = timedelta(minutes=5)
# The hard ceiling for a remote unlock whatever central's configuration says;
# central's own cap (``commands.max_unlock_seconds``) is usually lower.
MAX_REMOTE_UNLOCK_SECONDS = 600.0
SERVICES = ("kiosk", "sync", "lockctl")
CommandName = Literal[
    "door.unlock",
    "door.relock",
    "door.lockdown",
    "door.release",
    "service.restart",
    "device.reboot",
    "config.reload",
    "config.apply",
    "diagnostics.collect",
    "screen.capture",
]
# Which device process runs each command (the sync agent hands it over
# through the device store's command ledger).
TARGETS: dict[str, Literal["agent", "lockctl", "kiosk"]] = {
    "door.unlock": "lockctl",
    "door.relock": "lockctl",
    "door.lockdown": "lockctl",
    "door.release": "lockctl",
    "service.restart": "agent",
    "device.reboot": "agent",
    "config.reload": "agent",
    "config.apply": "agent",
    "diagnostics.collect": "agent",
    "screen.capture": "kiosk",
}
# Commands that need a fresh second factor in the dashboard.
SECOND_FACTOR = frozenset({"door.unlock", "door.lockdown"})
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# Where a device uploads what a command collected (diagnostics, a
# screenshot): central's device listener, mutual TLS, the command's id in the
# path; the device's certificate must be the command's device.
ATTACHMENT_PATH = "/device/v1/commands/{command_id}/attachment"
MAX_ATTACHMENT_BYTES = {"diagnostics.collect": 2 * 1024 * 1024, "screen.capture": 8 * 1024 * 1024}
ATTACHMENT_TYPES = {"diagnostics.collect": "application/json", "screen.capture": "image/png"}
ResultState = Literal["delivered", "done", "failed", "refused", "expired"]
FINAL_STATES = frozenset({"done", "failed", "refused", "expired"})
ResultCode = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")]
# Who issued it: a staff account (``staff:<username>``) or an API token
# (``token:<name>``); never a resident.
Issuer = Annotated[str, Field(pattern=r"^(staff|token):[A-Za-z0-9._@-]{1,64}$")]
# A door of this device, or ``*``: every door of the device.
DoorOrAll = Annotated[str, Field(pattern=r"^(\*|[a-z0-9][a-z0-9-]{0,62})$")]


class CommandError(ContractError, ValueError):
    """A command that must not run; ``code`` is the result code to report."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class NoArgs(_Args):
    pass


class UnlockArgs(_Args):
    door: Identifier
    seconds: Annotated[float, Field(gt=0, le=MAX_REMOTE_UNLOCK_SECONDS)]
    # Why staff opened it (recorded with the door event): required, short,
    # and checked by the personal-data guard at central and on the device.
    reason: Annotated[str, Field(min_length=3, max_length=200)]


class DoorArgs(_Args):
    """A door of this device, or ``*``: every door of the device."""

    door: DoorOrAll


class LockdownArgs(_Args):
    door: DoorOrAll
    reason: Annotated[str, Field(min_length=3, max_length=200)]


class ServiceArgs(_Args):
    service: Literal["kiosk", "sync", "lockctl"]


class ConfigApplyArgs(_Args):
    """A desired configuration: ``settings`` is a partial device
    configuration (only the sections and keys a push may change), applied
    over the device's own file and validated as a whole before it is kept."""

    version: Annotated[int, Field(ge=1, le=2**63 - 1)]
    settings: dict[str, Any]


class DiagnosticsArgs(_Args):
    log_lines: Annotated[int, Field(ge=1, le=5000)] = 500


ARGS: dict[str, type[_Args]] = {
    "door.unlock": UnlockArgs,
    "door.relock": DoorArgs,
    "door.lockdown": LockdownArgs,
    "door.release": DoorArgs,
    "service.restart": ServiceArgs,
    "device.reboot": NoArgs,
    "config.reload": NoArgs,
    "config.apply": ConfigApplyArgs,
    "diagnostics.collect": DiagnosticsArgs,
    "screen.capture": NoArgs,
}


class DeviceCommand(Message):
    """``devices/{d}/commands``: one signed remote operation."""

    id: CallId
    device: Identifier
    name: CommandName
    args: dict[str, Any] = Field(default_factory=dict)
    issued_by: Issuer
    issued_at: AwareDatetime
    expires_at: AwareDatetime
    key_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    signature: Annotated[str, Field(min_length=80, max_length=100)]

    def parsed_args(self) -> _Args:
        """The arguments as their command's model (validated on receipt)."""
        return ARGS[self.name].model_validate(self.args)


class CommandResult(Message):
    """``devices/{d}/results``: what became of a command. ``detail`` carries
    figures and names (door, version, bytes uploaded), never personal data."""

    id: CallId
    device: Identifier
    name: CommandName
    state: ResultState
    code: ResultCode
    message: Annotated[str, Field(max_length=500)] = ""
    detail: dict[str, Any] = Field(default_factory=dict)
    at: AwareDatetime


def key_id(public_key: Ed25519PublicKey) -> str:
    """The first 16 hex digits of the SHA-256 of the raw public key."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def signing_bytes(body: dict[str, Any]) -> bytes:
    """The bytes the signature covers: the domain line and the canonical JSON
    of every field but ``signature``."""
    unsigned = {k: v for k, v in body.items() if k != "signature"}
    text = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return DOMAIN + text.encode()


def sign(
    private_key: Ed25519PrivateKey,
    *,
    command_id: str,
    device: str,
    name: str,
    args: dict[str, Any],
    issued_by: str,
    issued_at: datetime,
    lifetime: timedelta,
) -> bytes:
    """A signed :class:`DeviceCommand` payload (validated before signing, so
    central never sends what a device would refuse as malformed)."""
    if lifetime <= timedelta(0) or lifetime > MAX_LIFETIME:
        raise CommandError("bad_lifetime", f"a command lives 1 s to {MAX_LIFETIME}, not {lifetime}")
    body: dict[str, Any] = {
        "v": 1,
        "id": command_id,
        "device": device,
        "name": name,
        "args": ARGS[name].model_validate(args).model_dump(mode="json"),
        "issued_by": issued_by,
        "issued_at": issued_at.isoformat(timespec="milliseconds"),
        "expires_at": (issued_at + lifetime).isoformat(timespec="milliseconds"),
        "key_id": key_id(private_key.public_key()),
    }
    signature = private_key.sign(signing_bytes(body))
    body["signature"] = base64.urlsafe_b64encode(signature).decode().rstrip("=")
    DeviceCommand.model_validate(body)
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def verify(
    payload: bytes,
    keys: dict[str, Ed25519PublicKey],
    *,
    device: str,
    now: datetime,
) -> DeviceCommand:
    """Check a received command: shape, signature, device, time, arguments.

    Returns the command, or raises :class:`CommandError` whose ``code`` is
    the result to report (``malformed``, ``unknown_key``, ``bad_signature``,
    ``wrong_device``, ``not_yet_valid``, ``expired``, ``bad_lifetime``,
    ``bad_args``). Whether the id was seen before is the ledger's question.
    """
    body = _json_object(payload)
    keys_by_id = body.get("key_id")
    public_key = keys.get(keys_by_id) if isinstance(keys_by_id, str) else None
    if public_key is None:
        raise CommandError("unknown_key", f"not signed by a known command key ({keys_by_id!r})")
    signature = body.get("signature")
    try:
        raw = base64.urlsafe_b64decode(str(signature) + "=" * (-len(str(signature)) % 4))
        public_key.verify(raw, signing_bytes(body))
    except (InvalidSignature, ValueError):
        raise CommandError("bad_signature", "the command's signature does not verify") from None
    try:
        command = DeviceCommand.model_validate(body)
    except ValidationError as exc:
        raise CommandError("malformed", _first_problem(exc)) from None
    check_time(command, device=device, now=now)
    try:
        command.parsed_args()
    except ValidationError as exc:
        raise CommandError("bad_args", _first_problem(exc)) from None
    return command


def check_time(command: DeviceCommand, *, device: str, now: datetime) -> None:
    """Refuse a command for another device, from the future, or expired."""
    if command.device != device:
        raise CommandError("wrong_device", f"the command is for {command.device!r}, not {device!r}")
    if command.expires_at - command.issued_at > MAX_LIFETIME:
        raise CommandError("bad_lifetime", f"a command may live at most {MAX_LIFETIME}")
    if command.issued_at - now > MAX_CLOCK_SKEW:
        raise CommandError("not_yet_valid", "issued in the future: a clock is wrong")
    if now >= command.expires_at:
        raise CommandError("expired", f"expired at {command.expires_at.isoformat()}")


def result_payload(
    *,
    command_id: str,
    device: str,
    name: str,
    state: ResultState,
    code: str,
    message: str,
    at: datetime,
    detail: dict[str, Any] | None = None,
) -> bytes:
    """A :class:`CommandResult` payload."""
    result = CommandResult(
        id=command_id,
        device=device,
        name=name,  # type: ignore[arg-type]
        state=state,
        code=code,
        message=message[:500],
        detail=detail or {},
        at=at,
    )
    return result.model_dump_json().encode()


def peek(payload: bytes) -> tuple[str, str]:
    """The id and name of a command that failed to verify, when its JSON
    carries usable ones (so the refusal can still be reported against it)."""
    try:
        body = _json_object(payload)
    except CommandError:
        return "", ""
    cid, name = body.get("id"), body.get("name")
    ok_id = isinstance(cid, str) and _UUID.match(cid) is not None
    ok_name = isinstance(name, str) and name in ARGS
    return (cid if ok_id else "", name if ok_name else "")  # type: ignore[return-value]


def _json_object(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise CommandError("malformed", f"command of {len(payload)} bytes is too large")
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError):
        raise CommandError("malformed", "the command is not JSON") from None
    if not isinstance(body, dict):
        raise CommandError("malformed", "a command is a JSON object")
    return body


def _first_problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    return f"invalid at {where}: {first['msg']}"
