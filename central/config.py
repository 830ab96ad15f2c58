"""Central configuration: one TOML file (``--config central.toml``), typed and
validated at load like the device configuration; a bad file raises
:class:`~central.errors.CentralConfigError` naming the file, the key and what
was expected. There is no built-in configuration: every command names its file
(the demo writes its own). ``docs/central.md`` lists the keys.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from central.booking.settings import BookingSection
from central.devices.config import DevicesSection, EnrolmentSection, move_legacy_listener
from central.errors import CentralConfigError
from central.issuance.config import IssuanceSection
from central.opendata.config import OpendataSection
from central.ops.alerts import AlertThresholds
from central.websec import WebOptions, parse_networks
from contracts.commands import MAX_LIFETIME, MAX_REMOTE_UNLOCK_SECONDS
from contracts.mqtt import MAX_PACKET_BYTES
from contracts.reservations_hash import facility_code_key
from foundation.config import Section, read_config_file, validate_toml
from foundation.errors import MissingKeyError

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class DatabaseSection(Section):
    # SQLAlchemy URL: sqlite:///relative/or/absolute.db or
    # postgresql+psycopg://user:pass@host:port/dbname
    url: str = "sqlite:///central.db"
    pool_size: int = Field(default=5, ge=1, le=100)
    busy_timeout_seconds: float = Field(default=30.0, gt=0, le=600)

    @field_validator("url")
    @classmethod
    def _supported(cls, url: str) -> str:
        if not url.startswith(("sqlite:///", "postgresql+psycopg://", "postgresql://")):
            raise ValueError("must start with sqlite:/// or postgresql+psycopg://")
        return url


class TlsSection(Section):
    ca_file: Path
    cert_file: Path
    key_file: Path


class BrokerSection(Section):
    """The broker and central's client certificate; with TLS its CN must be
    "central" (the broker ACL allows it kiosk/v1/#). The same keys as the
    devices' ``[broker]`` (docs/configuration.md) plus the reconnect cap:
    central keeps its own model so a device setting never changes central."""

    host: str = "localhost"
    port: int = Field(default=8883, ge=1, le=65535)
    keepalive_seconds: int = Field(default=30, ge=5, le=3600)
    tls: TlsSection | None = None
    reconnect_max_seconds: float = Field(default=30.0, ge=1, le=600)
    # The largest MQTT packet central accepts (CONNECT Maximum Packet Size;
    # bigger ones are refused unread); the same value as the broker's
    # max_packet_size. The default fits the largest valid payload.
    max_packet_bytes: int = Field(default=MAX_PACKET_BYTES, ge=1024, le=256 * 1024 * 1024)


class IngestSection(Section):
    # Names this worker in logs and in events.worker; empty = host-pid.
    worker_id: str = Field(default="", max_length=64)
    # Messages waiting for the worker thread; when full the paho thread waits.
    queue_size: int = Field(default=2000, ge=10, le=1_000_000)
    # The payload bytes this worker holds (queued and being committed). When
    # full, QoS 1 messages wait at the broker (paho's thread stops reading);
    # QoS 0 health is dropped (the next one replaces it). One message is
    # always let in, so a limit below one packet cannot stall the worker.
    queue_max_bytes: int = Field(default=32 * 1024 * 1024, ge=64 * 1024, le=2**40)
    # Up to this many MQTT messages are committed in one transaction.
    commit_batch: int = Field(default=50, ge=1, le=1000)
    # true: a device's first resync request registers it for the facility it
    # names -- any holder of a fleet certificate could then read any
    # facility's reservations. Demo only; production registers devices from
    # provisioning (`central device add`, the Ansible central role).
    register_unknown_devices: bool = False
    max_gap_ranges: int = Field(default=100, ge=1, le=10000)


class ReservationsSection(Section):
    snapshot_chunk_size: int = Field(default=500, ge=1, le=5000)
    changelog_keep_versions: int = Field(default=10000, ge=1)
    # A device further behind than this gets a snapshot, not deltas.
    max_delta_versions: int = Field(default=1000, ge=1)
    # The fleet's code master key (hex or raw, >= 16 bytes; the fleet folder's
    # secrets/code-master.key, never on a device): reservation codes are
    # stored as HMACs under each facility's key derived from it, the key the
    # facility's devices get as reader.code_key_file. Required by `central
    # serve` (no fallback key).
    code_key_file: Path | None = None
    # A booking's first check-in later than its start + this is "late"; a
    # booking with none by then is a no-show (use figures, the webhook).
    checkin_grace_minutes: int = Field(default=15, ge=0, le=240)


class CommandsSection(Section):
    """``[commands]``: remote commands to devices (docs/protocol.md, "Commands")."""

    # Central's Ed25519 command signing key (PEM; the fleet folder's
    # secrets/command.key): every device holds its public half. Without it
    # central sends no command.
    signing_key_file: Path | None = None
    # Central's cap on a remote unlock, below the contract's hard ceiling.
    max_unlock_seconds: float = Field(default=60.0, gt=0, le=MAX_REMOTE_UNLOCK_SECONDS)
    # How long a command may wait for its device (offline devices get it when
    # they come back within this time, never later).
    default_lifetime_seconds: float = Field(default=300.0, gt=0, le=MAX_LIFETIME.total_seconds())


class BookingWebhookSection(Section):
    """Check-ins and no-shows of imported bookings, POSTed to the city's
    existing booking system (docs/booking.md)."""

    url: str = Field(pattern=r"^https?://")
    # The HMAC-SHA256 key of the signature header (raw bytes of the file,
    # surrounding whitespace stripped; at least 16 bytes).
    secret_file: Path
    timeout_seconds: float = Field(default=5, gt=0, le=60)
    # How often `serve` sweeps for no-shows and sends what is due.
    every_seconds: float = Field(default=30, gt=0, le=3600)
    # Retry back-off: doubles from `retry_first_seconds` up to this cap; a
    # message is retried until the receiver takes it.
    retry_first_seconds: float = Field(default=30, gt=0)
    retry_max_seconds: float = Field(default=3600, gt=0)


class ApiSection(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    page_size_max: int = Field(default=1000, ge=1, le=100000)
    # The address staff open the dashboard at; https:// makes every cookie
    # Secure even when TLS ends at a reverse proxy and the request is http.
    public_url: str = Field(default="", pattern=r"^(https?://\S+)?$")
    # Reverse proxies (addresses or networks) whose X-Forwarded-For names the
    # client; from anyone else the header is ignored.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Sign-in attempts per client address per 5 minutes (dashboard), shared
    # by all workers through the database.
    sign_in_attempts_per_address: int = Field(default=20, ge=1, le=10000)
    # /metrics, /docs, /openapi.json: with a token (Authorization: Bearer,
    # the file's content) and/or only on a separate listener (port > 0);
    # neither: not served.
    metadata_token_file: Path | None = None
    metadata_host: str = "127.0.0.1"
    metadata_port: int = Field(default=0, ge=0, le=65535)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, entries: list[str]) -> list[str]:
        parse_networks(entries)  # ValueError names the bad entry
        return entries


class LoggingSection(Section):
    level: LogLevel = "INFO"


class OpsSection(Section):
    # How often the alert rules run, and the health history compaction.
    evaluate_every_seconds: float = Field(default=15, gt=0, le=3600)
    compact_every_seconds: float = Field(default=3600, gt=0)
    thresholds: AlertThresholds = AlertThresholds()


class WebhookSection(Section):
    url: str = Field(pattern=r"^https?://")
    bearer_token: str = ""
    timeout_seconds: float = Field(default=5, gt=0, le=60)


class EmailSection(Section):
    host: str
    port: int = Field(default=25, ge=1, le=65535)
    sender: str
    recipients: list[str] = Field(min_length=1)
    starttls: bool = False
    username: str = ""
    password: str = ""


class NotifySection(Section):
    webhook: WebhookSection | None = None
    email: EmailSection | None = None


class CentralConfig(Section):
    """The whole central configuration (one TOML file)."""

    database: DatabaseSection = DatabaseSection()
    broker: BrokerSection = BrokerSection()
    ingest: IngestSection = IngestSection()
    reservations: ReservationsSection = ReservationsSection()
    api: ApiSection = ApiSection()
    logging: LoggingSection = LoggingSection()
    ops: OpsSection = OpsSection()
    notify: NotifySection = NotifySection()
    booking_webhook: BookingWebhookSection | None = None
    issuance: IssuanceSection = IssuanceSection()
    booking: BookingSection = BookingSection()
    devices: DevicesSection = DevicesSection()
    enrolment: EnrolmentSection = EnrolmentSection()
    opendata: OpendataSection = OpendataSection()
    commands: CommandsSection = CommandsSection()
    source: str = Field(default="<built-in demo>", exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _legacy_listener(cls, data: Any) -> Any:
        return move_legacy_listener(data)

    @model_validator(mode="after")
    def _listener_when_needed(self) -> Self:
        if self.devices.listener is None:
            for flow, on in (("enrolment", self.enrolment.enabled),
                             ("issuance", self.issuance.enabled)):  # fmt: skip
                if on:
                    raise ValueError(
                        f"{flow}.enabled needs the device listener: [devices.listener] "
                        "with cert_file, key_file, client_ca_file and client_crl_file"
                    )
        return self

    @property
    def device_listener_enabled(self) -> bool:
        """The device listener runs for card enrolment or issuance."""
        return self.enrolment.enabled or self.issuance.enabled


def load_config(path: str | os.PathLike[str]) -> CentralConfig:
    """Load and validate a central configuration file."""
    file = Path(path)
    return parse_config(
        read_config_file(file, CentralConfigError), str(file), file.resolve().parent
    )


def parse_config(text: str, source: str, base_dir: Path) -> CentralConfig:
    config = validate_toml(text, source, CentralConfig, CentralConfigError, "docs/central.md")
    return _resolve_paths(config, base_dir)


def _resolve_paths(config: CentralConfig, base_dir: Path) -> CentralConfig:
    def absolute(p: Path) -> Path:
        return p if p.is_absolute() else base_dir / p

    database = config.database
    prefix = "sqlite:///"
    if database.url.startswith(prefix):
        file = Path(database.url.removeprefix(prefix))
        database = database.model_copy(update={"url": prefix + str(absolute(file))})
    broker = config.broker
    if broker.tls is not None:
        tls = broker.tls.model_copy(
            update={
                "ca_file": absolute(broker.tls.ca_file),
                "cert_file": absolute(broker.tls.cert_file),
                "key_file": absolute(broker.tls.key_file),
            }
        )
        broker = broker.model_copy(update={"tls": tls})
    reservations = config.reservations
    if reservations.code_key_file is not None:
        reservations = reservations.model_copy(
            update={"code_key_file": absolute(reservations.code_key_file)}
        )
    hook = config.booking_webhook
    if hook is not None:
        hook = hook.model_copy(update={"secret_file": absolute(hook.secret_file)})
    api = config.api
    if api.metadata_token_file is not None:
        api = api.model_copy(update={"metadata_token_file": absolute(api.metadata_token_file)})
    devices = config.devices
    if devices.listener is not None:
        devices = devices.model_copy(update={"listener": devices.listener.resolved(base_dir)})
    opendata = config.opendata.model_copy(update={"folder": absolute(config.opendata.folder)})
    commands = config.commands
    if commands.signing_key_file is not None:
        commands = commands.model_copy(
            update={"signing_key_file": absolute(commands.signing_key_file)}
        )
    return config.model_copy(
        update={
            "commands": commands,
            "opendata": opendata,
            "devices": devices,
            "database": database,
            "broker": broker,
            "reservations": reservations,
            "booking_webhook": hook,
            "api": api,
            "issuance": config.issuance.resolved(base_dir),
        }
    )


CodeKey = Callable[[str], bytes]
CODE_KEY_HOW = "the fleet's code master key, secrets/code-master.key of the fleet folder"


def code_key(config: CentralConfig) -> CodeKey:
    """The key for reservation-code hashes, per facility (or other scope):
    derived from the master key file (:func:`facility_code_key`); unset is a
    configuration error."""
    path = config.reservations.code_key_file
    if path is None:
        raise MissingKeyError(
            config.source, "reservations.code_key_file", kind="central", how=CODE_KEY_HOW
        )
    try:
        raw = path.read_bytes().strip()
    except OSError as exc:
        raise CentralConfigError(
            config.source, [f"reservations.code_key_file: cannot be read ({exc})"]
        ) from None
    try:
        key = bytes.fromhex(raw.decode())
    except (UnicodeDecodeError, ValueError):
        key = raw
    if len(key) < 16:
        raise CentralConfigError(
            config.source, ["reservations.code_key_file: key shorter than 16 bytes"]
        )
    return lambda scope: facility_code_key(key, scope)


def webhook_secret(config: CentralConfig) -> bytes | None:
    """The booking webhook's signing key, or None without a webhook; an
    unreadable or short file is a configuration error (no unsigned sending)."""
    hook = config.booking_webhook
    if hook is None:
        return None
    try:
        secret = hook.secret_file.read_bytes().strip()
    except OSError as exc:
        raise CentralConfigError(
            config.source, [f"booking_webhook.secret_file: cannot be read ({exc})"]
        ) from None
    if len(secret) < 16:
        raise CentralConfigError(
            config.source, ["booking_webhook.secret_file: secret shorter than 16 bytes"]
        )
    return secret


def web_options(config: CentralConfig) -> WebOptions:
    """``[api]``'s web keys for ``create_app``; an unreadable or short
    metadata token file is a configuration error (never an open endpoint)."""
    api = config.api
    token = None
    if api.metadata_token_file is not None:
        try:
            token = api.metadata_token_file.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise CentralConfigError(
                config.source, [f"api.metadata_token_file: cannot be read ({exc})"]
            ) from None
        if len(token) < 16:
            raise CentralConfigError(
                config.source, ["api.metadata_token_file: token shorter than 16 characters"]
            )
    listener = (api.metadata_host, api.metadata_port) if api.metadata_port else None
    return WebOptions(public_url=api.public_url.rstrip("/"),
                      trusted_proxies=tuple(api.trusted_proxies),
                      attempts_per_address=api.sign_in_attempts_per_address,
                      metadata_token=token, metadata_listener=listener)  # fmt: skip
