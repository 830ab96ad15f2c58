"""Door lockdown: which doors refuse every unlock request, and how that is kept.

A ``door.lockdown`` command (``docs/protocol.md``, "Commands") puts a door,
or every door of the device (``*``), in lockdown until ``door.release``:
lockctl then refuses every unlock request for it on its socket (check-in,
staff card, remote) with the error code ``lockdown``. The exit button still
unlocks it (free egress from inside is a safety rule, never switched off).

The state is kept in the device store's ``sync_state`` under
:data:`STATE_KEY` as JSON, so a lockctl restart or a reboot keeps the doors
in lockdown; the check-in touchscreen reads the same key to tell people
before they tap (:func:`doors_in_lockdown`). Pure: encoding, decoding and
the ``*`` expansion; the store I/O is :mod:`lockctl.inbox`'s.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

STATE_KEY = "lockctl.lockdown"
ALL_DOORS = "*"


class LockdownStateError(ValueError):
    """The stored lockdown state is not what lockctl writes."""


@dataclass(frozen=True, slots=True)
class Lockdown:
    """One door's lockdown: the staff's reason, the command that set it, since when."""

    reason: str
    ref: str  # the command id
    since: str  # ISO 8601, the device's wall clock


def expand(door: str, known: Iterable[str]) -> list[str]:
    """The doors a command's ``door`` names (``*``: every configured door)."""
    doors = list(known)
    return doors if door == ALL_DOORS else [door]


def encode(lockdowns: dict[str, Lockdown]) -> str:
    """The JSON kept under :data:`STATE_KEY`."""
    body = {"v": 1, "doors": {d: asdict(x) for d, x in sorted(lockdowns.items())}}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def decode(text: str | None) -> dict[str, Lockdown]:
    """The stored state (None: no lockdown was ever set)."""
    if text is None:
        return {}
    try:
        body: Any = json.loads(text)
        doors = body["doors"]
        if body.get("v") != 1 or not isinstance(doors, dict):
            raise TypeError("not version 1")
        return {
            str(door): Lockdown(str(x["reason"]), str(x["ref"]), str(x["since"]))
            for door, x in doors.items()
        }
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise LockdownStateError(f"{STATE_KEY} is not lockctl's lockdown state: {exc}") from None


def doors_in_lockdown(text: str | None) -> frozenset[str]:
    """For readers of the store (the touchscreen): the doors in lockdown.
    A state that cannot be read counts as every door (``*``): a screen then
    says the entrance is closed rather than inviting a tap lockctl refuses."""
    try:
        return frozenset(decode(text))
    except LockdownStateError:
        return frozenset({ALL_DOORS})
