"""What central checks before it signs a command (pure: no I/O).

The device checks the contract again (signature, expiry, arguments, its own
doors); central refuses early what it can know: an unknown device, a door
its facility does not have, an unlock above central's cap, a reason that
looks like personal data, a command an API token may not give.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from central.commands.errors import CommandRefused
from contracts.commands import ARGS, MAX_LIFETIME, SECOND_FACTOR
from foundation.errors import PersonalDataError
from foundation.privacy import check_event_data

# Commands that act on every door of every device of a facility at once.
FACILITY_COMMANDS = frozenset({"door.lockdown", "door.release", "door.relock"})
# The argument values the audit log may hold (never the reason or settings).
AUDITED_ARGS = ("door", "seconds", "service", "version", "log_lines")


@dataclass(frozen=True)
class DeviceFacts:
    """What central knows of a device when a command is asked for it."""

    device: str
    known: bool
    facility: str | None = None
    # The doors of its facility as central knows them (rooms); None: central
    # does not know them, the device decides.
    doors: frozenset[str] | None = None


def check_request(
    facts: DeviceFacts, name: str, args: Mapping[str, Any], *,
    max_unlock_seconds: float, lifetime: timedelta,
) -> dict[str, Any]:  # fmt: skip
    """The command's arguments as the contract spells them, or
    :class:`CommandRefused` naming the first problem."""
    if not facts.known:
        raise CommandRefused("unknown_device", f"no device {facts.device!r} is registered")
    model = ARGS.get(name)
    if model is None:
        raise CommandRefused("unknown_command", f"no command {name!r}")
    if not timedelta(0) < lifetime <= MAX_LIFETIME:
        raise CommandRefused("bad_lifetime", f"a command lives 1 s to {MAX_LIFETIME}")
    try:
        parsed = model.model_validate(dict(args)).model_dump(mode="json")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "arguments"
        raise CommandRefused("bad_args", f"{where}: {first['msg']}") from None
    door = parsed.get("door")
    if (
        isinstance(door, str)
        and door != "*"
        and facts.doors is not None
        and door not in facts.doors
    ):
        known = ", ".join(sorted(facts.doors)) or "none"
        raise CommandRefused(
            "unknown_door", f"facility {facts.facility} has no door {door!r} (doors: {known})"
        )
    seconds = parsed.get("seconds")
    if isinstance(seconds, int | float) and seconds > max_unlock_seconds:
        raise CommandRefused(
            "over_cap", f"an unlock lasts at most {max_unlock_seconds:g} s, not {seconds:g} s"
        )
    if "reason" in parsed:
        check_reason(str(parsed["reason"]))
    return parsed


def check_reason(reason: str) -> None:
    """The personal-data guard of the event path over the staff's reason."""
    try:
        check_event_data({"reason": reason})
    except PersonalDataError as exc:
        raise CommandRefused(
            "bad_reason", f"the reason looks like personal data ({exc.reason}): say why, not who"
        ) from None


def check_issuer(issuer: str, name: str) -> None:
    """API tokens may not give commands that need a fresh second factor:
    a token is a standing secret, not a person who just proved presence."""
    if issuer.startswith("token:") and name in SECOND_FACTOR:
        raise CommandRefused(
            "second_factor_required",
            f"{name} needs a fresh second factor: ask it from the dashboard",
        )


def audited_args(args: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments the audit log keeps (door, seconds, service, version)."""
    return {k: args[k] for k in AUDITED_ARGS if k in args}
