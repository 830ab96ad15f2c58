"""Desired device configurations at central, and pushing them.

* Staff save a facility's or a device's settings (TOML in the dashboard);
  each save is a new row of ``device_config_versions`` whose ``version``
  comes from one sequence for all of central. Settings are checked against
  the allowlist both ends share (:mod:`contracts.configpush`): a key that
  may not be pushed is refused here, with its name. The full validation is
  the device's (it alone has its own file to validate against).
* A device's desired configuration is its facility's latest settings with
  its own latest over them; its version is the greater of the two rows'
  versions, so it grows with every save that touches the device.
* "Push" sends the desired configuration as a ``config.apply`` command
  through an :data:`Issuer` (central's command service) and records it in
  ``device_config_state`` as pending; the command's result (``record_result``)
  or the device's health (``config_version``) moves it to applied, refused
  or failed.

Every save and push, and every refusal of one, is an audit entry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from central.audit import Outcome, record, record_now
from central.db.engine import Database, aware, utc
from central.db.tables import device_config_state, device_config_versions, devices
from central.errors import CentralError
from contracts.commands import CommandError
from contracts.configpush import check_pushable, merge_settings, settings_from_toml

log = logging.getLogger(__name__)

Scope = Literal["facility", "device"]
SCOPES: tuple[Scope, ...] = ("facility", "device")
# (device, command name, args, issuer, source) -> the command's id. The
# lead wires central.commands' CommandService.issue (with its lifetime).
Issuer = Callable[[str, str, dict[str, Any], str, str], str]
NOTE_MAX = 200
HISTORY = 50


class ConfigPushRefused(CentralError, ValueError):
    """A save or push that central refuses; ``code`` names why
    (``not_pushable``, ``bad_toml``, ``bad_settings``, ``unknown_target``,
    ``nothing_to_push``, ``no_issuer``, ``issue_failed``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ConfigVersion:
    version: int
    scope: str
    target: str
    settings: dict[str, Any]
    created_by: str
    created_at: datetime
    note: str


@dataclass(frozen=True)
class Desired:
    """A device's desired configuration: its facility's and its own, merged."""

    version: int
    settings: dict[str, Any]
    facility_version: int | None
    device_version: int | None


@dataclass(frozen=True)
class DeviceConfigStatus:
    device: str
    facility: str
    desired_version: int | None
    applied_version: int | None  # from the device's last health report
    pushed_version: int | None
    state: str  # not_pushed | pending | applied | refused | failed | none
    code: str
    message: str
    pushed_at: datetime | None


class ConfigPushService:
    def __init__(self, db: Database, issue: Issuer | None = None) -> None:
        self.db = db
        self.issue = issue

    # -- desired configurations ------------------------------------------

    def save(self, scope: str, target: str, text: str, *, actor: str, now: datetime,
             note: str = "") -> int:  # fmt: skip
        """Store TOML ``text`` as the new desired settings of a facility or
        device; the new version. ConfigPushRefused (audited) when refused."""
        subject = f"config:{scope}:{target}"[:80]
        try:
            if scope not in SCOPES or not self._known(scope, target):
                raise ConfigPushRefused("unknown_target", f"no {scope} {target!r}")
            settings = settings_from_toml(text)
        except (CommandError, ConfigPushRefused) as exc:
            code = exc.code
            record_now(self.db, actor, "config.save", subject, outcome=Outcome.REFUSED,
                       reason=code, at=now)  # fmt: skip
            log.warning("configuration refused", extra={"target": subject, "code": code})
            raise ConfigPushRefused(code, str(exc)) from None
        with self.db.write() as conn:
            version = int(conn.execute(insert(device_config_versions).values(
                scope=scope, target=target, settings=settings, created_by=actor[:80],
                created_at=utc(now), note=note.strip()[:NOTE_MAX],
            ).returning(device_config_versions.c.version)).scalar_one())  # fmt: skip
            record(conn, actor, "config.save", subject, at=now,
                   detail={"version": version, "keys": _keys(settings)})  # fmt: skip
        log.info("configuration saved", extra={"target": subject, "version": version})
        return version

    def _known(self, scope: str, target: str) -> bool:
        column = devices.c.id if scope == "device" else devices.c.facility
        with self.db.read() as conn:
            return conn.execute(select(column).where(column == target).limit(1)).first() is not None

    def latest(self, scope: str, target: str) -> ConfigVersion | None:
        found = self.history(scope, target, limit=1)
        return found[0] if found else None

    def history(self, scope: str, target: str, limit: int = HISTORY) -> list[ConfigVersion]:
        t = device_config_versions.c
        query = (select(device_config_versions).where(t.scope == scope, t.target == target)
                 .order_by(t.version.desc()).limit(limit))  # fmt: skip
        with self.db.read() as conn:
            return [_version(r) for r in conn.execute(query).all()]

    def desired(self, device: str) -> Desired | None:
        """The device's facility settings with its own over them (None: neither)."""
        with self.db.read() as conn:
            facility = conn.execute(select(devices.c.facility).where(devices.c.id == device))
            fac = facility.scalar()
        layers = [self.latest("facility", fac) if fac else None, self.latest("device", device)]
        if layers == [None, None]:
            return None
        merged = merge_settings(*(layer.settings for layer in layers if layer is not None))
        return Desired(
            max(layer.version for layer in layers if layer is not None), merged,
            layers[0].version if layers[0] else None, layers[1].version if layers[1] else None,
        )  # fmt: skip

    # -- pushing -----------------------------------------------------------

    def push(self, device: str, *, actor: str, source: str, now: datetime) -> str:
        """Send the device its desired configuration; the command's id."""
        subject = f"device:{device}"
        desired = self.desired(device)
        try:
            if desired is None:
                raise ConfigPushRefused("nothing_to_push", f"no configuration for {device}")
            if self.issue is None:
                raise ConfigPushRefused("no_issuer", "remote commands are not set up at central")
            check_pushable(desired.settings)  # rows are checked on save; a newer list may differ
            args = {"version": desired.version, "settings": desired.settings}
            try:
                command_id = self.issue(device, "config.apply", args, actor, source)
            except (CentralError, CommandError, ValueError) as exc:
                raise ConfigPushRefused("issue_failed", str(exc)) from None
        except (CommandError, ConfigPushRefused) as exc:
            code = exc.code
            record_now(self.db, actor, "config.push", subject, outcome=Outcome.REFUSED,
                       reason=code, source=source or None, at=now)  # fmt: skip
            raise ConfigPushRefused(code, str(exc)) from None
        with self.db.write() as conn:
            _upsert_state(conn, device, version=desired.version, command_id=command_id,
                          actor=actor, now=now)  # fmt: skip
            record(conn, actor, "config.push", subject, source=source or None, at=now,
                   detail={"version": desired.version, "command_id": command_id})  # fmt: skip
        log.info("configuration pushed", extra={"device": device, "version": desired.version})
        return command_id

    def push_facility(self, facility: str, *, actor: str, source: str,
                      now: datetime) -> dict[str, str]:  # fmt: skip
        """Push every device of ``facility``: device -> command id or ``refused: why``."""
        with self.db.read() as conn:
            ids = conn.execute(select(devices.c.id).where(devices.c.facility == facility)
                               .order_by(devices.c.id)).scalars().all()  # fmt: skip
        done: dict[str, str] = {}
        for device in ids:
            try:
                done[device] = self.push(device, actor=actor, source=source, now=now)
            except ConfigPushRefused as exc:
                done[device] = f"refused: {exc.code}"
        return done

    def record_result(self, device: str, command_id: str, *, state: str, code: str,
                      message: str, now: datetime) -> bool:  # fmt: skip
        """A ``config.apply`` result from the device (wired to the command
        service's results): final states move the push on. False if it is
        not the device's latest push."""
        final = {"done": "applied", "refused": "refused", "failed": "failed",
                 "expired": "failed"}.get(state)  # fmt: skip
        outcome = {"applied": Outcome.OK, "refused": Outcome.REFUSED}.get(final or "")
        if final is None:
            return False
        s = device_config_state.c
        with self.db.write() as conn:
            changed = conn.execute(
                update(device_config_state)
                .where(s.device == device, s.command_id == command_id)
                .values(state=final, code=code[:48], message=message[:500], updated_at=utc(now))
            ).rowcount  # fmt: skip
            if changed:
                record(conn, f"device:{device}", "config.result", f"device:{device}", at=now,
                       outcome=outcome or Outcome.FAILED,
                       reason=code[:48], detail={"command_id": command_id})  # fmt: skip
        return bool(changed)

    # -- status --------------------------------------------------------------

    def statuses(self, *, facility: str = "", device: str = "") -> list[DeviceConfigStatus]:
        """Desired, applied and pushed versions of each device (of a facility)."""
        query = select(devices.c.id, devices.c.facility, devices.c.health).order_by(devices.c.id)
        if facility:
            query = query.where(devices.c.facility == facility)
        if device:
            query = query.where(devices.c.id == device)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
            pushes = {r.device: r for r in conn.execute(select(device_config_state)).all()}
        latest = self._latest_versions()
        return [_status(r, pushes.get(r.id), latest) for r in rows]

    def _latest_versions(self) -> dict[tuple[str, str], int]:
        t = device_config_versions.c
        with self.db.read() as conn:
            rows = conn.execute(select(t.scope, t.target, func.max(t.version))
                                .group_by(t.scope, t.target)).all()  # fmt: skip
        return {(r[0], r[1]): int(r[2]) for r in rows}


def _status(row: Any, push: Any, latest: Mapping[tuple[str, str], int]) -> DeviceConfigStatus:
    found = [latest.get(("facility", row.facility or "")), latest.get(("device", row.id))]
    desired = max((v for v in found if v is not None), default=None)
    applied = (row.health or {}).get("config_version")
    applied = applied if isinstance(applied, int) and not isinstance(applied, bool) else None
    pushed = int(push.pushed_version) if push is not None else None
    if push is None:
        state = "none" if desired is None else "not_pushed"
    elif applied is not None and applied >= push.pushed_version:
        state = "applied"  # the health report says so, whatever result got lost
    else:
        state = push.state
    if state == "applied" and desired is not None and (applied or 0) < desired:
        state = "not_pushed"  # saved since: the device runs an older version
    return DeviceConfigStatus(
        row.id, row.facility or "", desired, applied, pushed, state,
        push.code if push is not None else "", push.message if push is not None else "",
        aware(push.pushed_at) if push is not None else None,
    )  # fmt: skip


def _upsert_state(conn: Connection, device: str, *, version: int, command_id: str, actor: str,
                  now: datetime) -> None:  # fmt: skip
    values = {"pushed_version": version, "command_id": command_id, "state": "pending",
              "code": "", "message": "", "pushed_by": actor[:80], "pushed_at": utc(now),
              "updated_at": utc(now)}  # fmt: skip
    s = device_config_state.c
    if conn.execute(
        update(device_config_state).where(s.device == device).values(**values)
    ).rowcount:
        return
    conn.execute(insert(device_config_state).values(device=device, **values))


def _keys(settings: Mapping[str, Any]) -> list[str]:
    """The dotted keys a version sets (for the audit entry: names, not values)."""
    keys: list[str] = []
    for section, table in settings.items():
        for key, value in table.items():
            if section == "doors":
                keys += [f"doors.{key}.{k}" for k in value]
            else:
                keys.append(f"{section}.{key}")
    return sorted(keys)


def _version(row: Any) -> ConfigVersion:
    return ConfigVersion(int(row.version), row.scope, row.target, dict(row.settings),
                         row.created_by, aware(row.created_at), row.note)  # fmt: skip
