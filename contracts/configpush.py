"""Pushed configuration: what central may change in a device's configuration.

Central keeps a desired configuration per facility and per device (a partial
device configuration, "settings"); it sends the merge of both to a device as
a signed ``config.apply`` command (:mod:`contracts.commands`). The device
lays the settings over its own TOML file, validates the whole with the
validator it uses at start and keeps it, or refuses it.

Only the keys of :data:`PUSHABLE` (sections) and :data:`DOOR_KEYS` (per
door) may be pushed: timings, texts and tuning that are safe to change from
the office. Identity, addresses, TLS and key files, the store, GPIO pins and
the ``[commands]`` section are never pushable (a push could otherwise move a
device to another broker or key). Both ends check the same list: central
before it stores a version, the device before it applies one.

Settings look like the device file's own tables, with doors keyed by id
(``"*"``: every door of the device, applied before a named door)::

    {"lock": {"default_unlock_seconds": 8},
     "doors": {"*": {"held_open_seconds": 60}, "front": {"unlock_seconds": 10}}}

Everything here is pure (no I/O): central and the device share it.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contracts.commands import CommandError, ConfigApplyArgs, DeviceCommand, verify

# Section -> keys a push may change (docs/configuration.md, "Pushed configuration").
PUSHABLE: Mapping[str, frozenset[str]] = {
    "logging": frozenset({"level"}),
    "lock": frozenset({"default_unlock_seconds", "max_unlock_seconds"}),
    "sync": frozenset({
        "batch_size", "max_inflight_batches", "health_interval_seconds",
        "reconnect_max_seconds", "reconnect_min_seconds", "ack_timeout_seconds",
        "poll_interval_seconds", "resync_timeout_seconds",
    }),
    "policy": frozenset({
        "early_entry_minutes", "late_exit_minutes", "stale_cache_minutes", "on_stale_cache",
        "on_untrusted_clock", "code_max_attempts", "code_lockout_minutes",
    }),
    "staff_call": frozenset({
        "where", "phone", "answer_timeout_seconds", "wait_seconds", "link_max_age_seconds",
    }),
    "voice": frozenset({"enabled", "volume"}),
    "keypad": frozenset({"enabled", "check_seconds", "call_staff_key"}),
}  # fmt: skip
# Per door (``doors.<id>`` or ``doors."*"``): timings and the label, never pins.
DOOR_KEYS = frozenset({
    "name", "unlock_seconds", "held_open_seconds", "relock_on_close",
    "forced_open_grace_seconds", "contact_debounce_seconds", "exit_button_debounce_seconds",
})  # fmt: skip
ALL_DOORS = "*"
# Which device services read each section (restarted after a push changes it).
SECTION_SERVICES: Mapping[str, tuple[str, ...]] = {
    "logging": ("kiosk", "lockctl", "sync"),
    "lock": ("lockctl", "kiosk"),
    "doors": ("lockctl", "kiosk"),
    "sync": ("sync",),
    "policy": ("kiosk",),
    "staff_call": ("kiosk",),
    "voice": ("kiosk",),
    "keypad": ("kiosk",),
}
_DOOR_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# A pushed configuration is small: the whole command must fit one MQTT message.
MAX_SETTINGS_BYTES = 16 * 1024


class ConfigPushError(CommandError):
    """Settings that may not be pushed; ``code`` is the refusal's result code
    (``not_pushable``, ``bad_settings``, ``unknown_door``, ``not_config``)."""


def _scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | bool | int)


def check_pushable(settings: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigPushError` naming the first key a push may not
    change, or a value that is no single setting (a table, a list)."""
    size = len(json.dumps(settings, ensure_ascii=False, default=str).encode())
    if size > MAX_SETTINGS_BYTES:
        raise ConfigPushError(
            "bad_settings", f"settings of {size} bytes (at most {MAX_SETTINGS_BYTES})"
        )
    for section, table in settings.items():
        if section != "doors" and section not in PUSHABLE:
            raise ConfigPushError("not_pushable", f"[{section}] is not pushable")
        if not isinstance(table, Mapping):
            raise ConfigPushError("bad_settings", f"{section} must be a table of settings")
        if section == "doors":
            for door, keys in table.items():
                if door != ALL_DOORS and not _DOOR_ID.match(str(door)):
                    raise ConfigPushError("bad_settings", f"doors.{door}: not a door id")
                if not isinstance(keys, Mapping):
                    raise ConfigPushError("bad_settings", f"doors.{door} must be a table")
                _check_keys(f"doors.{door}", keys, DOOR_KEYS)
        else:
            _check_keys(section, table, PUSHABLE[section])


def _check_keys(where: str, table: Mapping[str, Any], allowed: frozenset[str]) -> None:
    for key, value in table.items():
        if key not in allowed:
            raise ConfigPushError("not_pushable", f"{where}.{key} is not pushable")
        if not _scalar(value):
            raise ConfigPushError("bad_settings", f"{where}.{key} must be a single value")


def merge_settings(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Later layers over earlier ones, key by key (a facility's settings,
    then a device's); each door id merged on its own."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for section, table in layer.items():
            into = merged.setdefault(section, {})
            if section == "doors":
                for door, keys in table.items():
                    into[door] = {**into.get(door, {}), **keys}
            else:
                into.update(table)
    return merged


def apply_settings(raw: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """The device file's parsed TOML (``raw``) with ``settings`` laid over it:
    a new dict, ``raw`` untouched. A door id the file does not have is
    refused (``unknown_door``): a typo must not silently change nothing."""
    check_pushable(settings)
    out: dict[str, Any] = dict(raw)
    for section, table in settings.items():
        if section == "doors":
            out["doors"] = _apply_doors(raw.get("doors", []), table)
        else:
            current = raw.get(section, {})
            out[section] = {**(current if isinstance(current, Mapping) else {}), **table}
    return out


def _apply_doors(doors: Any, table: Mapping[str, Any]) -> list[Any]:
    if not isinstance(doors, list):
        return doors  # type: ignore[no-any-return]  # the validator names it
    known = {d.get("id") for d in doors if isinstance(d, Mapping)}
    for door in table:
        if door != ALL_DOORS and door not in known:
            raise ConfigPushError("unknown_door", f"doors.{door}: this device has no such door")
    everywhere = table.get(ALL_DOORS, {})
    return [
        {**d, **everywhere, **table.get(str(d.get("id")), {})} if isinstance(d, Mapping) else d
        for d in doors
    ]


def services_for(*settings: Mapping[str, Any]) -> list[str]:
    """The device services that read any section of ``settings``, and the
    sync agent whenever anything changes: it reports the version it was
    started with in its health, so its restart is what shows central the push
    is in force. Sorted, ``sync`` last (the agent applying it restarts itself)."""
    found = {svc for s in settings for section in s for svc in SECTION_SERVICES.get(section, ())}
    if found:
        found.add("sync")
    return sorted(found, key=lambda name: (name == "sync", name))


def settings_from_toml(text: str) -> dict[str, Any]:
    """Settings typed as TOML (the dashboard's editor), checked against the
    allowlist; :class:`ConfigPushError` (``bad_toml``, ``not_pushable``...)."""
    try:
        settings = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigPushError("bad_toml", f"not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigPushError("bad_toml", "not valid TOML: nested too deeply") from None
    check_pushable(settings)
    return settings


def settings_to_toml(settings: Mapping[str, Any]) -> str:
    """Settings written back as TOML for the editor (tables of single values)."""
    lines: list[str] = []
    for section, table in settings.items():
        if section == "doors":
            for door, keys in table.items():
                lines += ["", f'[doors."{door}"]', *(_toml_line(k, v) for k, v in keys.items())]
        else:
            lines += ["", f"[{section}]", *(_toml_line(k, v) for k, v in table.items())]
    return "\n".join(lines).strip() + "\n" if lines else ""


def _toml_line(key: str, value: Any) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        text = repr(value)
    else:
        text = json.dumps(str(value), ensure_ascii=False)  # a TOML basic string
    return f"{key} = {text}"


def verify_pushed(
    payload: bytes, keys: dict[str, Ed25519PublicKey], *, device: str
) -> tuple[DeviceCommand, ConfigApplyArgs]:
    """A kept ``config.apply`` command, checked as at delivery (central's
    signature, this device, the arguments) except its lifetime: the file is
    read at every start, long after the command expired. CommandError."""
    issued_at = _issued_at(payload)
    command = verify(payload, keys, device=device, now=issued_at)
    if command.name != "config.apply":
        raise ConfigPushError("not_config", f"a {command.name} command is no configuration")
    args = ConfigApplyArgs.model_validate(command.args)  # checked by verify already
    check_pushable(args.settings)
    return command, args


def _issued_at(payload: bytes) -> datetime:
    try:
        issued = datetime.fromisoformat(str(json.loads(payload)["issued_at"]))
    except (ValueError, TypeError, KeyError, RecursionError):
        issued = None
    if issued is None or issued.tzinfo is None:
        raise CommandError("malformed", "not a signed command (no issued_at with a zone)")
    return issued
