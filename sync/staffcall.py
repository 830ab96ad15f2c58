"""What the sync agent tells the touchscreens through the device store: is
the broker connection up, and central's state of this device's staff call.

The agent writes both into ``sync_state`` (it owns the MQTT connection); a
touchscreen reads them on its one-second clock. Nothing here is personal:
a connection flag, a random call id, a state word and a time.
"""

from __future__ import annotations

import json
import logging

from contracts.mqtt import ProtocolError, StaffCallState, decode, encode
from sync.store import Store

log = logging.getLogger(__name__)

LINK_KEY = "agent.link"
STAFF_CALL_KEY = "staffcall.state"
# While connected the agent confirms the link this often, so a reader can
# tell a live "connected" from one left behind by an agent that died.
LINK_REFRESH_SECONDS = 20.0


def record_link(store: Store, connected: bool, now: float) -> None:
    store.set_state(LINK_KEY, json.dumps({"connected": connected, "at": now}))


def link_connected(store: Store, now: float, max_age: float) -> bool:
    """True when the agent said "connected" within ``max_age`` seconds."""
    raw = store.get_state(LINK_KEY)
    if not raw:
        return False
    try:
        link = json.loads(raw)
        return bool(link["connected"]) and now - float(link["at"]) <= max_age
    except (ValueError, KeyError, TypeError):
        log.warning("unreadable link state in the store", extra={"key": LINK_KEY})
        return False


def record_staff_call(store: Store, payload: bytes) -> StaffCallState | None:
    """Keep central's retained staff-call message (empty: no call); raises
    :class:`~contracts.mqtt.ProtocolError` for a malformed one."""
    state = decode(StaffCallState, payload) if payload else None
    store.set_state(STAFF_CALL_KEY, encode(state).decode() if state else "")
    return state


def current_staff_call(store: Store) -> StaffCallState | None:
    raw = store.get_state(STAFF_CALL_KEY)
    if not raw:
        return None
    try:
        return decode(StaffCallState, raw.encode())
    except ProtocolError as exc:
        log.warning("unreadable staff call state in the store", extra={"error": str(exc)})
        return None
