"""A remote unlock end to end: an operator in headless Chromium asks an
unlock on the device page and confirms it with a passkey made for that
confirmation (Chromium's virtual authenticator); central signs it and its
relay publishes it through the real mosquitto (mutual TLS, the fleet ACL);
the real sync agent verifies it and puts it in the device store's ledger;
the real lockctl daemon (gpiozero mock pins) verifies it again and energises
the relay; the result travels back and the dashboard shows "Done" without a
reload. Then, with the agent stopped, a relock asked from the dashboard
waits at central and runs when the device comes back (delivery on
reconnection); a replay of the unlock's exact bytes is answered from the
ledger and never opens the door again."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from selenium import webdriver

from central.api.app import create_app
from central.commands import CommandService
from central.commands.relay import CommandRelay
from central.db.engine import Database
from central.ops.staff import StaffStore
from central.websec import WebOptions
from contracts.mqtt import device_topic
from sync.ledger import CommandLedger
from sync.store import open_store
from tests.harness.browser import serve_app
from tests.harness.central import worker_thread, write_config
from tests.harness.central_commands import register, start_relay, write_signing_key
from tests.harness.command_desk import PASSWORD, CommandDesk, virtual_authenticator
from tests.harness.keys import fixed_code_key
from tests.harness.mosquitto import Mosquitto
from tests.harness.mqtt import connect
from tests.harness.services import ServiceProcess, free_port, wait_until
from tests.harness.syncdev import agent_process, write_device_config
from tests.integration.lockctl_daemon import LockDaemon

pytestmark = pytest.mark.e2e

DEVICE, FACILITY, DOOR = "dev-a", "fac-1", "room-a"  # lockctl_daemon's device and door


@dataclass
class Office:
    url: str
    db: Database
    service: CommandService
    relay: CommandRelay


@dataclass
class Device:
    lockctl: LockDaemon
    agent: ServiceProcess
    store: Path


@pytest.fixture
def office(tmp_path: Path, fresh_mosquitto: Mosquitto) -> Iterator[Office]:
    fresh_mosquitto.devices[DEVICE] = FACILITY
    fresh_mosquitto.reload_acl()
    db = Database(f"sqlite:///{tmp_path / 'central.db'}")
    _, key = write_signing_key(tmp_path / "keys")
    (tmp_path / "keys" / "command.pub").write_bytes(
        key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    service = CommandService(db, key, default_lifetime=timedelta(minutes=5))
    relay = start_relay(service, fresh_mosquitto, tmp_path / "central")
    port = free_port()
    url = f"http://localhost:{port}"  # a secure context for WebAuthn
    app = create_app(db, code_key=fixed_code_key, web=WebOptions(public_url=url),
                     commands=service)  # fmt: skip
    register(db, DEVICE, FACILITY, doors=(DOOR, "room-b"))
    # The ingest worker records the device's status and stores its events.
    ingest = write_config(
        tmp_path / "ingest", fresh_mosquitto, f"sqlite:///{tmp_path / 'central.db'}"
    )
    with worker_thread(ingest), serve_app(app, "the dashboard", port):
        yield Office(url, db, service, relay)
    relay.close()
    db.close()


@pytest.fixture
def device(tmp_path: Path, fresh_mosquitto: Mosquitto, office: Office) -> Iterator[Device]:
    """lockctl and the sync agent of one device, sharing its store and
    central's command public key."""
    public_key = tmp_path / "keys" / "command.pub"
    lockctl = LockDaemon(tmp_path / "lockctl", command_key=public_key, clock_trusted=True)
    lockctl.start()
    config = write_device_config(fresh_mosquitto, tmp_path / "agent", DEVICE, FACILITY)
    config.write_text(
        config.read_text().replace(
            f'path = "{tmp_path / "agent" / "device.db"}"', f'path = "{lockctl.db}"'
        )
        + f'[commands]\npublic_key_file = "{public_key}"\nsystem = "sim"\n'
    )
    agent = agent_process(config, tmp_path / "agent" / "agent.log")
    agent.start()
    try:
        wait_until(lambda: _online(office.db), 30, "the device's birth at central")
        yield Device(lockctl, agent, lockctl.db)
    finally:
        agent.stop()
        lockctl.stop()


def central_unlocks(db: Database, ref: str) -> list[dict[str, object]]:
    """The ``door.unlocked`` events central stored for command ``ref``."""
    from sqlalchemy import select

    from central.db.tables import events

    with db.read() as conn:
        rows = conn.execute(select(events.c.data).where(events.c.type == "door.unlocked"))
        return [dict(r[0]) for r in rows if dict(r[0]).get("ref") == ref]


def _online(db: Database) -> bool:
    from sqlalchemy import select

    from central.db.tables import devices

    with db.read() as conn:
        state = conn.execute(select(devices.c.status).where(devices.c.id == DEVICE)).scalar()
    return state == "online"


@pytest.fixture
def browser(chromium: Callable[..., webdriver.Chrome]) -> Iterator[webdriver.Chrome]:
    driver = chromium(window=(1280, 900))
    driver.add_virtual_authenticator(virtual_authenticator())
    yield driver
    driver.remove_virtual_authenticator()
    driver.get("about:blank")  # closes the event streams before the server stops


def relay_history(daemon: LockDaemon) -> list[object]:
    return list(daemon.door(DOOR).get("mock_relay_history") or [])


def test_remote_unlock_dashboard_to_relay_and_back(
    office: Office, device: Device, browser: webdriver.Chrome, fresh_mosquitto: Mosquitto,
    artifacts_dir: Path,
) -> None:  # fmt: skip
    secret = StaffStore(office.db).create("sato", PASSWORD, "operator")
    desk = CommandDesk(browser, office.url)
    desk.sign_in("sato", secret)
    desk.add_passkey()
    assert not device.lockctl.door(DOOR)["relay_energised"]

    command_id = desk.unlock_from_device_page(DEVICE, DOOR, 20, "card reader jammed")
    # lockctl energised the relay for a signed command it verified itself.
    wait_until(lambda: device.lockctl.door(DOOR)["relay_energised"], 20,
               f"the relay of {DOOR}\n{device.lockctl.log_text()[-2000:]}")  # fmt: skip
    desk.wait_state(command_id, "Done", timeout=30)
    browser.save_screenshot(str(artifacts_dir / "remote-unlock-done.png"))
    row = office.service.get(command_id)
    assert row is not None and row["state"] == "done"
    assert row["detail"]["relay_energised"] is True and row["detail"]["door"] == DOOR
    wait_until(lambda: len(central_unlocks(office.db, command_id)) == 1, 20,
               "the door.unlocked event at central")  # fmt: skip
    assert central_unlocks(office.db, command_id)[0]["reason"] == "remote"

    # The same bytes again (a replay by anyone on the path): answered from the
    # ledger, never run again.
    with open_store(device.store) as store:
        entry = CommandLedger(store).get(command_id)
    assert entry is not None and entry.state == "done"
    before = len(relay_history(device.lockctl))
    replayer = connect(fresh_mosquitto, fresh_mosquitto.identity("central"), client_id="replayer")
    answered = office.relay.counts["stale"]
    try:
        replayer.publish(device_topic(DEVICE, "commands"), entry.body, qos=1)
        # The device answers a repeated id with its stored result (central
        # already has it: counted stale), so the replay has been handled.
        wait_until(lambda: office.relay.counts["stale"] > answered, 20, "the replay's answer")
    finally:
        replayer.close()
    assert len(relay_history(device.lockctl)) == before
    assert len(central_unlocks(office.db, command_id)) == 1

    # Delivery on reconnection: the device is away while a relock is asked.
    device.agent.stop()
    wait_until(lambda: not _online(office.db), 30, "central to see the device offline")
    relock = office.service.issue(DEVICE, "door.relock", {"door": DOOR}, issuer="staff:sato",
                                  source="127.0.0.1")  # fmt: skip
    assert office.service.get(relock)["state"] in ("queued", "sent")  # type: ignore[index]
    device.agent.start()
    wait_until(lambda: office.service.get(relock)["state"] == "done", 30,  # type: ignore[index]
               "the relock to run once the device is back")  # fmt: skip
    assert not device.lockctl.door(DOOR)["relay_energised"]
    print(json.dumps({"unlock": command_id, "relock": relock}))


def test_remote_unlock_expired_while_away_is_never_run(office: Office, device: Device) -> None:
    device.agent.stop()
    wait_until(lambda: not _online(office.db), 30, "central to see the device offline")
    command_id = office.service.issue(
        DEVICE, "door.unlock", {"door": DOOR, "seconds": 10, "reason": "delivery van"},
        issuer="staff:sato", source="127.0.0.1", lifetime=timedelta(seconds=2),
    )  # fmt: skip
    wait_until(lambda: office.service.get(command_id)["state"] == "expired", 30,  # type: ignore[index]
               "central to mark the undelivered command expired")  # fmt: skip
    device.agent.start()
    # A command asked after it comes back runs: the device is taking its
    # commands, and the expired one (asked earlier) never came.
    relock = office.service.issue(DEVICE, "door.relock", {"door": DOOR}, issuer="staff:sato",
                                  source="127.0.0.1")  # fmt: skip
    wait_until(lambda: office.service.get(relock)["state"] == "done", 30,  # type: ignore[index]
               "a relock asked once the device is back")  # fmt: skip
    assert office.service.get(command_id)["state"] == "expired"  # type: ignore[index]
    assert central_unlocks(office.db, command_id) == []
    assert not device.lockctl.door(DOOR)["relay_energised"]
