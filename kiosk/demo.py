"""The demo: every landed part on simulated hardware, embedded configuration.

So far the device spine has landed: configuration, the device store and its
outbox, structured logging. The demo loads the embedded configuration, opens
(or creates) the store in the demo state folder, records a ``device.started``
event and prints what a technician would check: the configuration, the store
and the queue of events waiting for central. Then, until Ctrl-C, it shows
events as any process appends them (try ``python -m sync append test.ping``
in another terminal). Later parts (lock controller, card reader, sync agent,
touchscreen) join here as they land.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

from sync.config import load_config
from sync.outbox import Outbox
from sync.store import SCHEMA_VERSION, open_store


def run_demo(
    config_path: str | None = None, state_dir: str | None = None, once: bool = False
) -> int:
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
        if not once and not problems:
            follow_outbox(outbox, after_seq=event.seq)
    return 0 if not problems else 1


def follow_outbox(outbox: Outbox, after_seq: int, interval: float = 0.5) -> None:
    """Print events appended by any process until Ctrl-C."""
    print("\nWatching the outbox (Ctrl-C to stop). In another terminal, try:")
    print('  .venv/bin/python -m sync append test.ping --data \'{"door": "room-a"}\'')
    try:
        while True:
            for event in outbox.pending(limit=100, after_seq=after_seq):
                print(f"  + {json.dumps(event.to_wire(), ensure_ascii=False)}", flush=True)
                after_seq = event.seq
            time.sleep(interval)
    except KeyboardInterrupt:
        print("\nDemo stopped.")
