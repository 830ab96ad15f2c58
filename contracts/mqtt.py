"""The MQTT wire contract shared by devices and central (DESIGN.md).

Topic root ``kiosk/v1``; JSON payloads in UTF-8, each with ``"v": 1`` (the
payload schema version). Every payload is validated on receipt with the
models below; anything else raises :class:`ProtocolError` with a reason that
is logged and counted, never a crash. ``docs/protocol.md`` documents the
topics, payloads, ack and resync rules with examples.

=========================================  ================  =============
topic                                      direction         QoS / retain
=========================================  ================  =============
kiosk/v1/devices/{d}/events                device -> central 1
kiosk/v1/devices/{d}/acks                  central -> device 1
kiosk/v1/devices/{d}/status                device -> central 1, retained
kiosk/v1/devices/{d}/health                device -> central 0
kiosk/v1/devices/{d}/requests              device -> central 1
kiosk/v1/devices/{d}/reservations          central -> device 1
kiosk/v1/facilities/{f}/reservations       central -> devices 1
kiosk/v1/devices/{d}/commands              central -> device 1, never retained
kiosk/v1/devices/{d}/results               device -> central 1
kiosk/v1/devices/{d}/staffcall             central -> device 1, retained
=========================================  ================  =============
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, NotRequired, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

# pydantic needs typing_extensions.TypedDict before Python 3.12.
from typing_extensions import TypedDict

from contracts.errors import ContractError

PROTOCOL_VERSION = 1
TOPIC_ROOT = "kiosk/v1"
MAX_PAYLOAD_BYTES = 256 * 1024
# The largest MQTT packet a valid payload needs: the payload limit plus room
# for the fixed header, the topic and the properties (response topic,
# correlation data). The default of the broker's ``max_packet_size`` and of
# both clients' CONNECT Maximum Packet Size (docs/protocol.md, "Limits").
MAX_PACKET_BYTES = MAX_PAYLOAD_BYTES + 8 * 1024
# Central's ingest workers share the event load (MQTT v5 shared subscription).
SHARED_EVENTS_SUBSCRIPTION = f"$share/central/{TOPIC_ROOT}/devices/+/events"

# Every integer a payload carries fits a signed 64-bit column (SQLite INTEGER,
# PostgreSQL BIGINT): a bigger one is refused on receipt, never stored.
MAX_INT = 2**63 - 1
Identifier = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
EventType = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")]
_DEVICE_TOPIC = re.compile(rf"^{TOPIC_ROOT}/devices/([a-z0-9][a-z0-9-]{{0,62}})/([a-z]+)$")
DEVICE_TOPIC_KINDS = frozenset(
    {
        "events",
        "acks",
        "status",
        "health",
        "requests",
        "reservations",
        "commands",
        "results",
        "staffcall",
    }
)
# The events a touchscreen records when a person calls staff, and when that
# person's session ends (they left, or the call was finished at the screen).
STAFF_CALLED_EVENT = "kiosk.staff_called"
STAFF_CALL_ENDED_EVENT = "kiosk.staff_call_ended"
# A random UUID (the privacy guard lets UUIDs through as they are).
CallId = Annotated[
    str, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
]


class ProtocolError(ContractError, ValueError):
    """A payload or topic that does not follow the wire contract."""


def device_topic(device_id: str, kind: str) -> str:
    if kind not in DEVICE_TOPIC_KINDS:
        raise ValueError(f"unknown device topic kind {kind!r}")
    return f"{TOPIC_ROOT}/devices/{device_id}/{kind}"


def facility_reservations_topic(facility_id: str) -> str:
    return f"{TOPIC_ROOT}/facilities/{facility_id}/reservations"


def parse_device_topic(topic: str) -> tuple[str, str]:
    """``kiosk/v1/devices/d1/events`` -> ``("d1", "events")``."""
    match = _DEVICE_TOPIC.match(topic)
    if not match or match.group(2) not in DEVICE_TOPIC_KINDS:
        raise ProtocolError(f"not a device topic: {topic!r}")
    return match.group(1), match.group(2)


class Message(BaseModel):
    # NaN and Infinity are not JSON: refused, so they never reach a column or an API.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    v: Literal[1] = 1


class EventEnvelope(BaseModel):
    """One event as recorded by a device (a device's ``sync.outbox.Event``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Annotated[
        str, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
    ]
    seq: Annotated[int, Field(ge=1, le=MAX_INT)]
    type: EventType
    at: AwareDatetime
    clock_trusted: bool
    data: dict[str, Any]


class EventBatch(Message):
    """``devices/{d}/events``: events in seq order, at most a batch's worth."""

    device: Identifier
    events: Annotated[list[EventEnvelope], Field(min_length=1, max_length=1000)]


class Ack(Message):
    """``devices/{d}/acks``: these event ids are committed centrally.

    A device deletes exactly the listed ids from its outbox. Central acks
    duplicates again (idempotent), and also acks events it stored in
    quarantine (valid envelope, refused content), so nothing loops forever.
    """

    ids: Annotated[list[str], Field(max_length=1000)]


class Status(Message):
    """``devices/{d}/status`` (retained): birth ``online`` and the will ``offline``.

    ``session`` increases at every connect of the device agent, so central
    can ignore a late will of an older session.
    """

    state: Literal["online", "offline"]
    session: Annotated[int, Field(ge=0, le=MAX_INT)]
    at: AwareDatetime | None = None
    versions: dict[str, str] = {}


class Health(Message):
    """``devices/{d}/health`` (QoS 0, latest value only, never queued)."""

    at: AwareDatetime
    session: Annotated[int, Field(ge=0, le=MAX_INT)] = 0
    uptime_s: Annotated[float, Field(ge=0)] | None = None
    cpu_temp_c: Annotated[float, Field(ge=-50, le=150)] | None = None
    throttled: Annotated[int, Field(ge=-MAX_INT, le=MAX_INT)] | None = None
    load1: Annotated[float, Field(ge=0)] | None = None
    mem_available_mb: Annotated[float, Field(ge=0)] | None = None
    disk_free_mb: Annotated[float, Field(ge=0)] | None = None
    disk_read_only: bool | None = None
    store_bytes: Annotated[int, Field(ge=0, le=MAX_INT)] | None = None
    outbox_depth: Annotated[int, Field(ge=0, le=MAX_INT)] | None = None
    outbox_oldest_age_s: Annotated[float, Field(ge=0)] | None = None
    reservation_version: Annotated[int, Field(ge=0, le=MAX_INT)] | None = None
    reservation_age_s: Annotated[float, Field(ge=0)] | None = None
    reservation_hash: str | None = None
    clock_synchronised: bool | None = None
    reader_present: bool | None = None
    lock_ok: bool | None = None
    printer: str | None = None
    versions: dict[str, str] = {}
    # Additive and optional (older devices omit it): messages the device rejected as
    # malformed, oversized or wrongly typed since its agent started.
    rejected_messages: Annotated[int, Field(ge=0, le=MAX_INT)] | None = None
    # Additive and optional: the version of the configuration central pushed
    # that the agent runs with (None: the device's own file alone).
    config_version: Annotated[int, Field(ge=1, le=MAX_INT)] | None = None
    # Additive and optional: the store's disk is full, so new events are refused
    # (committed ones are kept and still sent); see docs/sync.md "A full disk".
    store_full: bool | None = None


# The field types of a reservation, shared by the model and its record form.
ReservationId = Annotated[str, Field(min_length=1, max_length=64)]
CredentialRefs = Annotated[list[str], Field(max_length=32)]
ReservationStatus = Literal["active", "cancelled"]


class Reservation(BaseModel):
    """A reservation as a device needs it: who (opaque references or a hashed
    code), where (door or room), when. No names or contact data."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: ReservationId
    facility: Identifier
    door: Identifier
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    credential_refs: CredentialRefs = []
    code_hash: str | None = None
    status: ReservationStatus = "active"


class ReservationChange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    op: Literal["upsert", "cancel"]
    reservation: Reservation


class ReservationDelta(Message):
    """``facilities/{f}/reservations`` (live) or ``devices/{d}/reservations``
    (catch-up): the changes that take the facility from ``prev_version`` to
    ``version``. A device whose version is not ``prev_version`` has a gap and
    asks for a resync instead of applying it."""

    kind: Literal["delta"] = "delta"
    facility: Identifier
    prev_version: Annotated[int, Field(ge=0, le=MAX_INT)]
    version: Annotated[int, Field(ge=1, le=MAX_INT)]
    changes: Annotated[list[ReservationChange], Field(max_length=5000)]


class ReservationSnapshotChunk(Message):
    """``devices/{d}/reservations``: one chunk of a full snapshot at
    ``version``; the device applies the snapshot atomically once it has all
    ``chunks`` chunks of one ``snapshot_id``."""

    kind: Literal["snapshot"] = "snapshot"
    facility: Identifier
    version: Annotated[int, Field(ge=0, le=MAX_INT)]
    snapshot_id: Annotated[str, Field(min_length=1, max_length=64)]
    chunk: Annotated[int, Field(ge=0, le=MAX_INT)]
    chunks: Annotated[int, Field(ge=1, le=100000)]
    reservations: Annotated[list[Reservation], Field(max_length=5000)]


class ReservationRecord(TypedDict):
    """:class:`Reservation` validated into a plain dict, for the 100,000 of a
    snapshot: the same fields and rules (``tests/unit/test_mqtt_records.py``
    compares their schemas) but for the two timestamps, left as the strings
    they arrived as. A snapshot carries few distinct timestamps, so
    :func:`aware_epoch` checks and converts each distinct string once instead
    of pydantic building 200,000 datetimes. Defaults are absent keys."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    id: ReservationId
    facility: Identifier
    door: Identifier
    starts_at: str
    ends_at: str
    credential_refs: NotRequired[CredentialRefs]
    code_hash: NotRequired[str | None]
    status: NotRequired[ReservationStatus]


class SnapshotChunkRecord(TypedDict):
    """:class:`ReservationSnapshotChunk` validated into a plain dict (see
    :class:`ReservationRecord`); :func:`decode_snapshot_records` makes it."""

    __pydantic_config__ = ConfigDict(extra="forbid", allow_inf_nan=False)  # type: ignore[misc]
    v: NotRequired[Literal[1]]
    kind: NotRequired[Literal["snapshot"]]
    facility: Identifier
    version: Annotated[int, Field(ge=0, le=MAX_INT)]
    snapshot_id: Annotated[str, Field(min_length=1, max_length=64)]
    chunk: Annotated[int, Field(ge=0, le=MAX_INT)]
    chunks: Annotated[int, Field(ge=1, le=100000)]
    reservations: Annotated[list[ReservationRecord], Field(max_length=5000)]


_SNAPSHOT_CHUNK = TypeAdapter(SnapshotChunkRecord)
_AWARE_DATETIME = TypeAdapter(AwareDatetime)


class ResyncRequest(Message):
    """``devices/{d}/requests``: deltas since ``from_version`` (or a snapshot
    when central no longer has them, or when ``active_hash`` disagrees).
    Answered on ``devices/{d}/reservations`` with the request's MQTT v5
    correlation data."""

    kind: Literal["reservations.resync"] = "reservations.resync"
    facility: Identifier
    from_version: Annotated[int, Field(ge=0, le=MAX_INT)]
    active_hash: str | None = None


class StaffCallState(Message):
    """``devices/{d}/staffcall`` (retained): central's state of the device's
    current staff call. ``open``: staff were alerted; ``acknowledged``: a
    member of staff is on the way. Central clears the retained message (an
    empty payload) when the call is resolved. No names: neither the person's
    nor the staff member's."""

    call: CallId
    state: Literal["open", "acknowledged"]
    at: AwareDatetime


M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def encode(message: BaseModel) -> bytes:
    """Serialise a payload (compact JSON, UTF-8)."""
    return message.model_dump_json(exclude_none=False).encode()


def decode(model: type[M], payload: bytes) -> M:
    """Parse and validate a payload, or raise :class:`ProtocolError`."""
    # pydantic-core parses the JSON itself: about twice as fast as
    # json.loads + model_validate on large snapshot chunks.
    return _validated(model.__name__, model.model_validate_json, payload)


def decode_snapshot_records(payload: bytes) -> SnapshotChunkRecord | None:
    """A snapshot chunk validated as a whole into dicts, with every rule of
    :class:`ReservationSnapshotChunk` but the timestamps' (the caller checks
    each with :func:`aware_epoch`). None when it refuses the payload: then
    ``decode(ReservationSnapshotChunk, ...)`` gives the verdict and the
    contract's message (a refusal, or a chunk in a form the records do not
    take, such as timestamps written as numbers)."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return None
    try:
        return _SNAPSHOT_CHUNK.validate_json(payload)
    except ValidationError:
        return None


def aware_epoch(text: str) -> int | None:
    """A timestamp string as the device stores it, ``int(datetime.timestamp())``
    of what an ``AwareDatetime`` field makes of it (the same validator), or
    None when that field refuses it."""
    try:
        return int(_AWARE_DATETIME.validate_python(text).timestamp())
    except ValidationError:
        return None


def _validated(name: str, validate: Callable[[bytes], T], payload: bytes) -> T:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        return validate(payload)
    except ValidationError as exc:
        raise _refusal(name, exc) from None


def _refusal(name: str, exc: ValidationError) -> ProtocolError:
    first = exc.errors()[0]
    if first["type"] == "json_invalid":
        return ProtocolError(f"payload is not JSON: {first['msg']}")
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    return ProtocolError(
        f"{name} invalid at {where}: {first['msg']} ({exc.error_count()} problem(s))"
    )


def rfc3339(moment: datetime) -> str:
    """An aware datetime as RFC 3339 with offset (milliseconds)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: RFC 3339 needs an offset")
    return moment.isoformat(timespec="milliseconds")
