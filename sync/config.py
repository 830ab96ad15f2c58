"""Device configuration: one TOML file per device, read by every device process.

The schema is typed and validated at load; a bad file raises
:class:`~sync.errors.ConfigError` naming the file, the key and what was
expected. Unknown keys are errors too, so a misspelt key cannot silently fall
back to a default. ``docs/configuration.md`` documents every key.

There is no built-in configuration: every device command is given its file
(the demo writes its own, see ``demo/config.py``).

:func:`load_config` lays the configuration central pushed
(``commands.pushed_config_file``, a signed ``config.apply`` command; see
:mod:`contracts.configpush` and :mod:`sync.configpush`) over the file, so
every process runs with the same pushed settings. A pushed file that does not
verify, is for another device or makes the whole invalid (a software update
that tightened a rule) is logged and left out: the process starts with its
own file, never crash-loops.
"""

from __future__ import annotations

import logging
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from contracts.commands import CommandError
from contracts.configpush import apply_settings, verify_pushed
from contracts.mqtt import MAX_PACKET_BYTES
from foundation.config import (
    Section,
    known_zone,
    read_config_file,
    validate_data,
    validate_toml,
)
from foundation.errors import ConfigError
from sync.ledger import load_command_keys

log = logging.getLogger(__name__)

DEVICE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
BCM_PIN = Annotated[int, Field(ge=0, le=27)]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class DeviceSection(Section):
    id: str = Field(pattern=DEVICE_ID_PATTERN)
    facility: str = Field(pattern=DEVICE_ID_PATTERN)
    role: Literal["counter", "door"] = "door"
    name: str = ""
    timezone: str = "Asia/Tokyo"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        # Checked at load: an unknown zone would otherwise stop the
        # touchscreen and lockctl later, at their first event time.
        return known_zone(name)


class LoggingSection(Section):
    level: LogLevel = "INFO"


class StoreSection(Section):
    path: Path = Path("device.db")
    busy_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # Headroom kept beside the store so the outbox drains on a full disk
    # (sync.headroom); 0 turns it off.
    reserve_mb: float = Field(default=8.0, ge=0, le=1024)

    @property
    def reserve_bytes(self) -> int:
        return int(self.reserve_mb * 1024 * 1024)


class ReaderSection(Section):
    backend: Literal["pcsc", "sim"] = "pcsc"
    # Substring of the PC/SC reader name; empty means the first reader.
    name: str = ""
    # Key for opaque credential references (HMAC); 32 random bytes, hex or raw.
    credential_key_file: Path | None = None
    # This facility's reservation-code key (derived from the fleet's code
    # master key by provisioning); unset: credential_key_file (demo, tests).
    code_key_file: Path | None = None
    # Per-APDU timeout (the signature gets at least 15 s).
    apdu_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    # Try one extended-length READ BINARY for certificates (falls back to
    # short reads when the reader or card refuses it).
    extended_reads: bool = False


class LockSection(Section):
    socket: Path = Path("/run/lockctl/lockctl.sock")
    socket_group: str = ""
    pin_factory: Literal["default", "mock"] = "default"
    default_unlock_seconds: float = Field(default=5.0, gt=0, le=600)
    max_unlock_seconds: float = Field(default=30.0, gt=0, le=3600)
    # How often lockctl samples door contacts and exit buttons and re-checks
    # every relay level (edges wake it earlier).
    sample_interval_seconds: float = Field(default=0.05, gt=0, le=1)

    @model_validator(mode="after")
    def _default_within_max(self) -> LockSection:
        if self.default_unlock_seconds > self.max_unlock_seconds:
            raise ValueError(
                "default_unlock_seconds must not exceed max_unlock_seconds"
                f" ({self.default_unlock_seconds} > {self.max_unlock_seconds})"
            )
        return self


class DoorSection(Section):
    id: str = Field(pattern=DEVICE_ID_PATTERN)
    name: str = ""
    relay_pin: BCM_PIN
    # True: the driver energises the lock when the GPIO is high (fail-secure
    # wiring with an external pull-down keeps it locked at boot).
    relay_active_high: bool = True
    contact_pin: BCM_PIN | None = None
    contact_normally_closed: bool = True
    exit_button_pin: BCM_PIN | None = None
    buzzer_pin: BCM_PIN | None = None
    led_pin: BCM_PIN | None = None
    unlock_seconds: float | None = Field(default=None, gt=0)
    relock_on_close: bool = True
    held_open_seconds: float = Field(default=30.0, gt=0, le=3600)
    forced_open_grace_seconds: float = Field(default=1.0, ge=0, le=60)
    # A contact or exit-button level counts once it has been stable this long.
    contact_debounce_seconds: float = Field(default=0.1, ge=0, le=5)
    exit_button_debounce_seconds: float = Field(default=0.05, ge=0, le=5)

    def pins(self) -> dict[str, int]:
        named = {
            "relay_pin": self.relay_pin,
            "contact_pin": self.contact_pin,
            "exit_button_pin": self.exit_button_pin,
            "buzzer_pin": self.buzzer_pin,
            "led_pin": self.led_pin,
        }
        return {k: v for k, v in named.items() if v is not None}


class TlsSection(Section):
    ca_file: Path
    cert_file: Path
    key_file: Path


class BrokerSection(Section):
    host: str = "localhost"
    port: int = Field(default=8883, ge=1, le=65535)
    keepalive_seconds: int = Field(default=30, ge=5, le=3600)
    tls: TlsSection | None = None
    # The largest MQTT packet the agent accepts (CONNECT Maximum Packet Size:
    # the broker sends nothing bigger); the same value as the broker's
    # max_packet_size. The default fits the largest valid payload.
    max_packet_bytes: int = Field(default=MAX_PACKET_BYTES, ge=1024, le=256 * 1024 * 1024)


class CentralSection(Section):
    url: str = ""
    # Client certificate for mutual TLS; None = the broker's device identity.
    tls: TlsSection | None = None
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)


class IssuanceSection(Section):
    """Counter kiosks (``device.role = "counter"``): the issuance ports. A
    counter kiosk names its payment terminal and printer; there is no default."""

    payment_backend: Literal["sim"] | None = None
    printer_backend: Literal["file", "cups"] | None = None
    cups_queue: str = ""
    cups_server: str = ""  # host:port; empty = the local scheduler
    spool: Path = Path("issuance-spool")  # the file printer's folder
    sound: bool = True

    @model_validator(mode="after")
    def _cups_needs_queue(self) -> IssuanceSection:
        if self.printer_backend == "cups" and not self.cups_queue:
            raise ValueError('cups_queue is required with printer_backend = "cups"')
        return self


class EnrolmentSection(Section):
    """Card enrolment at this device's touchscreen (a button on the attract
    screen; the device side of ``contracts.enrolment``)."""

    enabled: bool = False


class VoiceSection(Section):
    """Spoken guidance on the touchscreens (docs/voice.md): every screen is
    read aloud from audio prepared ahead into ``cache_dir``."""

    enabled: bool = True
    # "alsa": the ALSA PCM named by ``device``; "sim": nothing is played (tests).
    output: Literal["alsa", "sim"] = "alsa"
    device: str = "default"
    volume: int = Field(default=80, ge=0, le=100)
    cache_dir: Path = Path("voice-cache")
    espeak_binary: str = "espeak-ng"
    jtalk_binary: str = "open_jtalk"
    jtalk_dictionary: Path = Path("/var/lib/mecab/dic/open-jtalk/naist-jdic")
    # The Open JTalk voice; unset: the one shipped in the pyopenjtalk package.
    jtalk_voice: Path | None = None
    # Language code -> eSpeak NG voice, over the built-in choice (docs/voice.md).
    espeak_voices: dict[str, str] = Field(default_factory=dict)


class KeypadSection(Section):
    """A USB numeric keypad beside the touchscreen (docs/kiosk.md, "Keypad")."""

    # False: keypad keys do nothing (the touchscreen works as before).
    enabled: bool = True
    # Its device node, watched for unplugging (log line, doctor warning);
    # e.g. /dev/input/by-id/usb-...-event-kbd. Empty: not watched.
    device: str = ""
    # The key that calls staff: "*", "/", "-" or "+"; empty for none.
    call_staff_key: Literal["*", "/", "-", "+", ""] = "*"
    check_seconds: float = Field(default=5.0, gt=0, le=300)

    @model_validator(mode="after")
    def _device_absolute(self) -> KeypadSection:
        if self.device and not Path(self.device).is_absolute():
            raise ValueError(f"keypad.device must be an absolute path, not {self.device!r}")
        return self


class SyncSection(Section):
    # Measured with bench/drain.py on emulated mobile links (docs/sync.md,
    # "Why these defaults"): 100 events (~19 KB) a batch and 8 in flight (~150
    # KB) keep a 10 Mbit/s, 50 ms uplink busy and queue under a second on a
    # 2 Mbit/s one; below ~128 kbit/s use 4 (all 8 must go out within
    # ack_timeout_seconds).
    batch_size: int = Field(default=100, ge=1, le=1000)
    max_inflight_batches: int = Field(default=8, ge=1, le=64)
    health_interval_seconds: float = Field(default=30.0, ge=1, le=3600)
    reconnect_max_seconds: float = Field(default=30.0, ge=1, le=600)
    # Added by the sync agent; see docs/sync.md.
    reconnect_min_seconds: float = Field(default=0.5, gt=0, le=60)
    # A batch central has not acknowledged within this time is sent again.
    ack_timeout_seconds: float = Field(default=20.0, gt=0, le=3600)
    # How often the agent looks for events appended by other processes.
    poll_interval_seconds: float = Field(default=0.5, gt=0, le=60)
    # An unanswered reservation resync request is repeated after this time.
    resync_timeout_seconds: float = Field(default=15.0, gt=0, le=3600)


class StaffCallSection(Section):
    """``[staff_call]``: what a touchscreen says when central cannot be
    reached. ``where`` and ``phone`` are shown as written (in the site's own
    words); empty means the screen says only the fixed, translated words."""

    where: str = Field(default="", max_length=80)
    phone: str = Field(default="", max_length=40)
    # A call central has not confirmed within this time counts as not reaching staff.
    answer_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # Waiting for staff is not being idle: the screen asks "are you still
    # there?" only after this long without a touch (then the call ends).
    wait_seconds: float = Field(default=300.0, ge=30, le=3600)
    # The agent's last word on its broker connection is trusted for this long.
    link_max_age_seconds: float = Field(default=90.0, gt=0, le=3600)


class PolicySection(Section):
    early_entry_minutes: int = Field(default=10, ge=0, le=240)
    late_exit_minutes: int = Field(default=10, ge=0, le=240)
    # How old the reservation cache may be before on_stale_cache applies.
    # At most a year (a bigger number overflows the date arithmetic).
    stale_cache_minutes: int = Field(default=60, ge=1, le=525_600)
    on_stale_cache: Literal["allow", "deny"] = "allow"
    on_untrusted_clock: Literal["allow", "deny"] = "deny"
    code_max_attempts: int = Field(default=5, ge=1, le=100)
    # 15: see docs/provisioning.md "Keys" (online guessing at a door).
    code_lockout_minutes: int = Field(default=15, ge=1, le=1440)


class CommandsSection(Section):
    """``[commands]``: remote commands from central (docs/protocol.md, "Commands")."""

    # Central's Ed25519 command public key (PEM), from the device bundle.
    # Without it the device runs no remote command: each is refused, and the
    # refusal reported to central.
    public_key_file: Path | None = None
    # How the agent restarts services and reboots: ``systemd`` (systemctl,
    # allowed by the polkit rule the installer puts in place) or ``sim``
    # (logged and recorded only: the demo and the tests).
    system: Literal["systemd", "sim"] = "systemd"
    # The configuration pushed by central (signed; applied over this file).
    pushed_config_file: Path = Path("pushed-config.json")


class DeviceConfig(Section):
    """The whole device configuration (one TOML file)."""

    device: DeviceSection
    logging: LoggingSection = LoggingSection()
    store: StoreSection = StoreSection()
    reader: ReaderSection = ReaderSection()
    lock: LockSection = LockSection()
    doors: list[DoorSection] = Field(default_factory=list)
    broker: BrokerSection = BrokerSection()
    central: CentralSection = CentralSection()
    issuance: IssuanceSection = IssuanceSection()
    enrolment: EnrolmentSection = EnrolmentSection()
    voice: VoiceSection = VoiceSection()
    keypad: KeypadSection = KeypadSection()
    sync: SyncSection = SyncSection()
    policy: PolicySection = PolicySection()
    staff_call: StaffCallSection = StaffCallSection()
    commands: CommandsSection = CommandsSection()
    # Where the config came from, for messages; not a TOML key.
    source: str = Field(default="<unnamed>", exclude=True)
    # The version of the pushed configuration laid over the file (None: the
    # file alone); set by load_config, never read from TOML.
    _pushed_version: int | None = PrivateAttr(default=None)

    @property
    def pushed_version(self) -> int | None:
        return self._pushed_version

    @model_validator(mode="after")
    def _counter_names_its_backends(self) -> DeviceConfig:
        if self.device.role == "counter":
            for key in ("payment_backend", "printer_backend"):
                if getattr(self.issuance, key) is None:
                    raise ValueError(f"issuance.{key} is required on a counter kiosk")
        return self

    @model_validator(mode="after")
    def _enrolment_names_central(self) -> DeviceConfig:
        if self.enrolment.enabled and not self.central.url:
            raise ValueError("central.url is required with enrolment.enabled = true")
        return self

    @model_validator(mode="after")
    def _doors_consistent(self) -> DeviceConfig:
        seen_ids: set[str] = set()
        seen_pins: dict[int, str] = {}
        for index, door in enumerate(self.doors):
            if door.id in seen_ids:
                raise ValueError(f"doors[{index}].id {door.id!r} is used by two doors")
            seen_ids.add(door.id)
            for key, pin in door.pins().items():
                where = f"doors[{index}].{key}"
                if pin in seen_pins:
                    raise ValueError(f"{where}: GPIO{pin} is already used by {seen_pins[pin]}")
                seen_pins[pin] = where
        return self

    def door(self, door_id: str) -> DoorSection:
        for door in self.doors:
            if door.id == door_id:
                return door
        raise KeyError(door_id)


def load_config(path: str | os.PathLike[str]) -> DeviceConfig:
    """Load and validate a device configuration file, with the configuration
    central pushed laid over it when there is a valid one; relative paths
    in it are relative to the file's folder."""
    file = Path(path)
    text = read_config_file(file, ConfigError)
    base = parse_config(text, str(file), file.resolve().parent)
    return with_pushed(base, tomllib.loads(text), file.resolve().parent)


def parse_config(text: str, source: str, base_dir: Path) -> DeviceConfig:
    """Parse TOML text into a validated :class:`DeviceConfig`."""
    config = validate_toml(text, source, DeviceConfig, ConfigError, "docs/configuration.md")
    return _resolve_paths(config, base_dir)


def parse_config_data(raw: dict[str, Any], source: str, base_dir: Path) -> DeviceConfig:
    """Parsed TOML (the file with pushed settings over it) into a validated
    :class:`DeviceConfig`: the same validator as :func:`parse_config`."""
    config = validate_data(raw, source, DeviceConfig, ConfigError, "docs/configuration.md")
    return _resolve_paths(config, base_dir)


def with_pushed(base: DeviceConfig, raw: dict[str, Any], base_dir: Path) -> DeviceConfig:
    """``base`` with the pushed configuration file over it, or ``base``
    alone (and one error log line) when that file cannot be applied."""
    pushed = base.commands.pushed_config_file
    try:
        payload = pushed.read_bytes()
    except FileNotFoundError:
        return base
    except OSError as exc:
        _not_applied(pushed, "unreadable", str(exc.strerror))
        return base
    try:
        keys = load_command_keys(base.commands.public_key_file)
    except ConfigError as exc:
        _not_applied(pushed, "no_key", "; ".join(exc.problems))
        return base
    try:
        if not keys:
            raise CommandError("unknown_key", "no commands.public_key_file to verify it with")
        _, args = verify_pushed(payload, keys, device=base.device.id)
        merged = parse_config_data(apply_settings(raw, args.settings), base.source, base_dir)
    except CommandError as exc:
        _not_applied(pushed, exc.code, exc.message)
        return base
    except ConfigError as exc:
        _not_applied(pushed, "invalid_config", "; ".join(exc.problems))
        return base
    merged._pushed_version = args.version
    return merged


def _not_applied(pushed: Path, code: str, problem: str) -> None:
    log.error(
        "pushed configuration not applied: starting with the device's own file",
        extra={"file": str(pushed), "code": code, "problem": problem[:500]},
    )


def _resolve_paths(config: DeviceConfig, base_dir: Path) -> DeviceConfig:
    def absolute(p: Path) -> Path:
        return p if p.is_absolute() else base_dir / p

    store = config.store.model_copy(update={"path": absolute(config.store.path)})
    lock = config.lock.model_copy(update={"socket": absolute(config.lock.socket)})
    reader = config.reader
    for name in ("credential_key_file", "code_key_file"):
        if getattr(reader, name) is not None:
            reader = reader.model_copy(update={name: absolute(getattr(reader, name))})

    def absolute_tls(tls: TlsSection | None) -> TlsSection | None:
        if tls is None:
            return None
        return tls.model_copy(
            update={
                "ca_file": absolute(tls.ca_file),
                "cert_file": absolute(tls.cert_file),
                "key_file": absolute(tls.key_file),
            }
        )

    broker = config.broker.model_copy(update={"tls": absolute_tls(config.broker.tls)})
    key_file = config.commands.public_key_file
    commands = config.commands.model_copy(
        update={
            "public_key_file": absolute(key_file) if key_file is not None else None,
            "pushed_config_file": absolute(config.commands.pushed_config_file),
        }
    )
    central = config.central.model_copy(update={"tls": absolute_tls(config.central.tls)})
    issuance = config.issuance.model_copy(update={"spool": absolute(config.issuance.spool)})
    jtalk_voice = config.voice.jtalk_voice
    voice = config.voice.model_copy(
        update={
            "cache_dir": absolute(config.voice.cache_dir),
            "jtalk_voice": absolute(jtalk_voice) if jtalk_voice is not None else None,
        }
    )
    return config.model_copy(
        update={
            "store": store,
            "lock": lock,
            "reader": reader,
            "broker": broker,
            "central": central,
            "issuance": issuance,
            "voice": voice,
            "commands": commands,
        }
    )
