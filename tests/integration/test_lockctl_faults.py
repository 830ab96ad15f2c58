"""Faults inside the daemon, in-process on a real MockFactory: an exception in
the control loop relocks before the daemon ends; a GPIO already in use is a
clear error that leaves the relays it did claim de-energised."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from gpiozero import OutputDevice

from lockctl.client import LockClient
from lockctl.controller import Controller
from lockctl.daemon import Daemon
from lockctl.errors import HardwareError
from lockctl.events import EventWriter
from lockctl.hardware import Hardware, lock_relays, make_factory
from lockctl.watchdog import Notifier
from sync.config import parse_config
from tests.harness.services import wait_until
from tests.integration.lockctl_daemon import CONFIG


def config_in(folder: Path):  # type: ignore[no-untyped-def]
    return parse_config(CONFIG.format(group="", held_open=30), "test", folder)


def test_lockctl_control_loop_exception_relocks_and_ends(tmp_path: Path) -> None:
    config = config_in(tmp_path)
    factory = make_factory("mock")
    relays = lock_relays(config, factory)
    hardware = Hardware(config, factory, relays)
    daemon = Daemon(config, hardware, relays_locked_at=0.0, install_signals=False)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(daemon.run())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    wait_until(config.lock.socket.exists, 10, "socket")
    with LockClient(config.lock.socket) as client:
        client.unlock("room-a", seconds=30)
    relay_pin = hardware.doors["room-a"].relay.pin
    assert relay_pin.state is True
    assert daemon.controller is not None

    def broken() -> float | None:
        raise RuntimeError("simulated bug in the control loop")

    daemon.controller.step = broken  # type: ignore[method-assign]
    thread.join(20)
    assert not thread.is_alive()
    assert [str(e) for e in outcome] == ["simulated bug in the control loop"]
    assert relay_pin.state is False
    assert not config.lock.socket.exists()
    hardware.close()


def test_lockctl_pin_in_use_is_a_clear_error(tmp_path: Path) -> None:
    config = config_in(tmp_path)
    factory = make_factory("mock")
    squatter = OutputDevice(5, pin_factory=factory)  # room-b's relay pin, taken
    try:
        with pytest.raises(HardwareError, match=r"GPIO5 \(doors\[1\]\.relay_pin\)"):
            lock_relays(config, factory)
    finally:
        squatter.close()
    factory.reset()
    relays = lock_relays(config, factory)
    taken = OutputDevice(27, pin_factory=factory)  # room-a's contact pin
    try:
        with pytest.raises(HardwareError, match=r"doors\[0\]\.contact_pin"):
            Hardware(config, factory, relays)
        assert all(relay.pin.state is False for relay in relays)
    finally:
        taken.close()


class CountingNotifier(Notifier):
    def __init__(self) -> None:
        super().__init__(None, 20_000)  # feed every 10 ms
        self.feeds = 0

    def notify(self, *lines: str) -> None:
        self.feeds += lines.count("WATCHDOG=1")


def test_lockctl_watchdog_not_fed_while_a_relay_cannot_be_driven(tmp_path: Path) -> None:
    config = config_in(tmp_path)
    factory = make_factory("mock")
    hardware = Hardware(config, factory, lock_relays(config, factory))
    events = EventWriter(tmp_path / "d.db", busy_timeout=1, timezone="Asia/Tokyo", started={})
    notifier = CountingNotifier()

    async def run_for(seconds: float) -> None:
        controller = Controller(config, hardware, events, notifier)
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(seconds, stop.set)
        await controller.run(stop)

    asyncio.run(run_for(0.2))
    assert notifier.feeds >= 3  # healthy: fed
    pins = hardware.doors["room-b"]
    pins.relay.pin.state = True  # the line is stuck high ...
    pins.set_relay = lambda energised: None  # type: ignore[method-assign]  # ... and cannot be driven
    notifier.feeds = 0
    asyncio.run(run_for(0.2))
    assert notifier.feeds == 0  # systemd would kill and restart the daemon
    hardware.close()
