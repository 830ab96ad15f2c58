"""Device configurations the touchscreen end-to-end tests share: a door device
(its store holding a reservation for the demo FeliCa card, lockctl serving it
on mock pins) and a counter kiosk with simulated payment and a file printer."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from cardreader.credential import member_reference
from cardreader.sim.profiles import DEMO_FELICA_IDM
from sync.reservations import ReservationCache
from sync.store import open_store
from tests.harness.keys import TEST_KEY, write_test_key
from tests.harness.services import ServiceProcess, wait_until

TOKYO = ZoneInfo("Asia/Tokyo")


@contextmanager
def door_device(tmp_path: Path, extra: str = "") -> Iterator[Path]:
    """The door's config (``extra``: more TOML sections), its store with a
    reservation for the demo FeliCa card covering now, and lockctl serving it."""
    config = tmp_path / "device.toml"
    config.write_text(
        '[device]\nid = "e2e-door"\nfacility = "gym"\nname = "Gym"\n'
        f'[store]\npath = "{tmp_path / "device.db"}"\n'
        f'[reader]\ncredential_key_file = "{write_test_key(tmp_path / "credential.key")}"\n'
        f'[lock]\nsocket = "{tmp_path / "lockctl.sock"}"\npin_factory = "mock"\n'
        f"{extra}"
        '[[doors]]\nid = "room-a"\nname = "Room A"\nrelay_pin = 17\ncontact_pin = 27\n'
    )
    now = datetime.now(TOKYO)
    with open_store(tmp_path / "device.db") as store, store.write() as conn:
        conn.execute(
            "INSERT INTO reservations (id, facility, door, starts_at, ends_at, version)"
            " VALUES ('res-felica', 'gym', 'room-a', ?, ?, 1)",
            (int((now - timedelta(minutes=5)).timestamp()),
             int((now + timedelta(hours=1)).timestamp())),
        )  # fmt: skip
        conn.execute(
            "INSERT INTO reservation_credentials (reservation_id, credential_ref) VALUES (?, ?)",
            ("res-felica", member_reference(TEST_KEY, DEMO_FELICA_IDM)),
        )
    with open_store(tmp_path / "device.db") as store:
        ReservationCache(store, "gym").mark_synced()  # as the sync agent does
    lockctl = ServiceProcess(
        "lockctl", [sys.executable, "-m", "lockctl", "serve", "--config", str(config)],
        tmp_path / "lockctl.log",
    )  # fmt: skip
    lockctl.start()
    try:
        wait_until(
            lambda: lockctl.check_alive() and (tmp_path / "lockctl.sock").exists(), 20, "lockctl"
        )
        yield config
    finally:
        lockctl.stop()


def counter_config(tmp_path: Path, extra: str = "") -> Path:
    """A counter kiosk's config: simulated payment, PDFs into ``spool``."""
    config = tmp_path / "counter.toml"
    config.write_text(
        '[device]\nid = "e2e-counter"\nfacility = "city-hall"\nrole = "counter"\n'
        'name = "City hall"\n'
        f'[store]\npath = "{tmp_path / "device.db"}"\n'
        f'[reader]\ncredential_key_file = "{write_test_key(tmp_path / "credential.key")}"\n'
        '[issuance]\npayment_backend = "sim"\nprinter_backend = "file"\n'
        f'spool = "{tmp_path / "spool"}"\nsound = false\n'
        f"{extra}"
    )
    return config
