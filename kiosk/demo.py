"""The demo: every landed part on simulated hardware, embedded configuration.

So far the device spine has landed: configuration, the device store and its
outbox, structured logging. The demo loads the embedded configuration, opens
(or creates) the store in the demo state folder, records a ``device.started``
event and prints what a technician would check: the configuration, the store
and the queue of events waiting for central. Later parts (lock controller,
card reader, sync agent, touchscreen) join here as they land.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from sync.config import load_config
from sync.outbox import Outbox
from sync.store import SCHEMA_VERSION, open_store


def run_demo(config_path: str | None = None, state_dir: str | None = None) -> int:
    if state_dir:
        os.environ["KIOSK_STATE_DIR"] = str(Path(state_dir).resolve())
    config = load_config(config_path)
    print(f"City kiosk demo — device {config.device.id} at facility {config.device.facility}")
    print(f"  configuration : {config.source}")
    for door in config.doors:
        pins = config.lock.pin_factory
        print(f"  door          : {door.id} (relay GPIO{door.relay_pin}, {pins} pins)")
    with open_store(config.store.path, busy_timeout=config.store.busy_timeout_seconds) as store:
        outbox = Outbox(store)
        event = outbox.append(
            "device.started",
            {"component": "demo", "python": platform.python_version()},
        )
        print(f"  store         : {store.path} (schema {SCHEMA_VERSION}, WAL, synchronous=FULL)")
        print(f"  event recorded: {event.type} seq={event.seq} id={event.id} at={event.at}")
        print(f"  outbox        : {outbox.depth()} event(s) waiting for central")
        problems = store.integrity_problems()
        print(f"  integrity     : {'ok' if not problems else '; '.join(problems)}")
    return 0 if not problems else 1
