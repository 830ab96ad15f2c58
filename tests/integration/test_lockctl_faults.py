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
from lockctl.daemon import Daemon
from lockctl.errors import HardwareError
from lockctl.hardware import Hardware, lock_relays, make_factory
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
