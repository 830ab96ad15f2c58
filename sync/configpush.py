"""Applying a configuration central pushed (the ``config.apply`` command).

The sync agent hands a verified ``config.apply`` command to
:func:`config_apply_handler`'s handler, which calls :func:`apply_pushed`:

1. the signed command is verified again (signature, this device, arguments)
   and its settings checked against the allowlist
   (:data:`contracts.configpush.PUSHABLE`): ``not_pushable`` names the key;
2. a version below the applied one is refused (``stale_version``);
3. the settings are laid over the device's own TOML file and the whole is
   validated by :func:`sync.config.parse_config_data`, the validator every
   process uses at start: ``invalid_config`` with its message, and the
   previous pushed file is left as it was, byte for byte; the same version
   again, still valid, is done without change (a redelivery);
4. the signed command is written as the pushed file (temporary file, fsync,
   rename: a crash leaves the old file or the new one, never half of one),
   so every process verifies for itself that central sent it;
5. the applied version is recorded in the store (``sync_state``) and the
   services reading the changed sections are restarted.

Every process then lays that file over its own at start (:func:`sync.config.load_config`).
"""

from __future__ import annotations

import logging
import os
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contracts.commands import CommandError, DeviceCommand
from contracts.configpush import apply_settings, services_for, verify_pushed
from foundation.config import read_config_file
from sync.config import DeviceConfig, parse_config, parse_config_data
from sync.errors import ConfigError
from sync.ledger import CommandLedger, load_command_keys
from sync.store import Store

log = logging.getLogger(__name__)

VERSION_KEY = "config.version"  # in sync_state: the applied pushed version
# Restarts the named device services (the agent's service control: systemd or sim).
Restart = Callable[[list[str]], None]


@dataclass(frozen=True, slots=True)
class PushOutcome:
    """What became of a push: a command result's state, code, message, detail."""

    state: Literal["done", "refused", "failed"]
    code: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Kept:
    version: int
    settings: dict[str, Any]


def applied_version(store: Store) -> int:
    """The version of the last configuration applied here (0: none)."""
    try:
        return int(store.get_state(VERSION_KEY, "0") or 0)
    except ValueError:
        return 0


def apply_pushed(
    body: bytes, config_path: Path, pushed_file: Path | None = None, *, store: Store,
    restart: Restart, keys: dict[str, Ed25519PublicKey] | None = None,
) -> PushOutcome:  # fmt: skip
    """Apply one signed ``config.apply`` command (see the module docstring).
    ``pushed_file`` and ``keys`` default to the device file's ``[commands]``."""
    base_dir = config_path.resolve().parent
    try:
        text = read_config_file(config_path, ConfigError)
        base = parse_config(text, str(config_path), base_dir)
        keys = keys if keys is not None else load_command_keys(base.commands.public_key_file)
    except ConfigError as exc:  # the device's own file broke since start
        log.error("pushed configuration not applied: the device file is invalid",
                  extra={"file": exc.path, "problems": exc.problems})  # fmt: skip
        return PushOutcome("failed", "base_config_invalid", str(exc)[:500])
    pushed_file = pushed_file or base.commands.pushed_config_file
    try:
        command, args = verify_pushed(body, keys, device=base.device.id)
    except CommandError as exc:
        return _refused(exc.code, exc.message, 0)
    previous = _kept(pushed_file, keys, base.device.id)
    applied = max(applied_version(store), previous.version if previous else 0)
    if args.version < applied:
        older = f"version {args.version} is older than the applied {applied}"
        return _refused("stale_version", older, args.version)
    try:  # the same version again too: after a software update it may no longer fit
        parse_config_data(apply_settings(tomllib.loads(text), args.settings), base.source, base_dir)
    except CommandError as exc:  # an unknown door, a key not pushable
        return _refused(exc.code, exc.message, args.version)
    except ConfigError as exc:
        return _refused("invalid_config", "; ".join(exc.problems), args.version)
    if args.version == applied:
        return PushOutcome("done", "unchanged", f"version {applied} is applied already",
                           {"version": applied, "services": []})  # fmt: skip
    write_atomically(pushed_file, body)
    store.set_state(VERSION_KEY, str(args.version))
    services = services_for(args.settings, previous.settings if previous else {})
    log.info("pushed configuration applied", extra={
        "version": args.version, "command": command.id, "services": services})  # fmt: skip
    try:
        restart(services)
    except Exception as exc:  # the service control's own errors: the file stays applied
        log.error("restart after a pushed configuration failed",
                  extra={"version": args.version, "error": str(exc)[:300]})  # fmt: skip
        message = f"applied, but restarting failed: {exc}"[:500]
        return PushOutcome("failed", "restart_failed", message,
                           {"version": args.version, "services": services})  # fmt: skip
    return PushOutcome("done", "applied", f"version {args.version} applied",
                       {"version": args.version, "services": services})  # fmt: skip


def _refused(code: str, message: str, version: int) -> PushOutcome:
    log.warning("pushed configuration refused",
                extra={"code": code, "version": version, "problem": message[:500]})  # fmt: skip
    return PushOutcome("refused", code, message[:500], {"version": version} if version else {})


def _kept(pushed_file: Path, keys: dict[str, Ed25519PublicKey], device: str) -> _Kept | None:
    """The pushed configuration in force, if its file is there and verifies."""
    try:
        _, args = verify_pushed(pushed_file.read_bytes(), keys, device=device)
    except (OSError, CommandError):
        return None
    return _Kept(args.version, args.settings)


def write_atomically(path: Path, data: bytes) -> None:
    """``path`` holds ``data`` or its old content, never a part (temporary
    file in the same folder, fsync, rename, fsync of the folder)."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        Path(temp).chmod(0o644)  # every device process reads it; it holds no secret
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def config_apply_handler(
    config: DeviceConfig, store: Store, restart: Restart
) -> Callable[[DeviceCommand, object], PushOutcome]:
    """The agent's handler for ``config.apply``: the signed body is taken
    from the command ledger (as received, so its signature still verifies)."""
    ledger = CommandLedger(store)
    config_path = Path(config.source)

    def handle(command: DeviceCommand, context: object) -> PushOutcome:
        entry = ledger.get(command.id)
        if entry is None:
            return PushOutcome("failed", "not_in_ledger", "the command is not in the ledger")
        return apply_pushed(entry.body, config_path, store=store, restart=restart)

    return handle
