"""``lockctl serve``: start-up order, signals and shutdown of the daemon.

Start-up order is a safety property:

1. the configuration is loaded (a bad file exits before any GPIO is touched;
   the external pull-downs keep every lock de-energised);
2. **every relay output is claimed de-energised** (``initial_value=False``),
   before inputs, store, socket or anything else;
3. inputs, buzzer and LED; the event writer thread (store, outbox and the
   ``lockctl.started`` event saying whether the previous run ended cleanly);
4. the lockdowns kept in the store (:mod:`lockctl.lockdown`), so no unlock
   request is taken for a door in lockdown;
5. the socket is bound (0660, configured group); then ``READY=1`` to systemd;
   the remote-command inbox (:mod:`lockctl.inbox`) starts polling the ledger.

Stop: SIGTERM/SIGINT end the control loop; every relay is de-energised and
read back first, then the socket closes, events are flushed (bounded) and the
process exits 0. Any exception in the control loop takes the same path
(relock first) and the process exits 1, so systemd restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from foundation.clock import clock_is_synchronised
from lockctl.controller import Controller
from lockctl.events import EventWriter
from lockctl.hardware import Hardware, lock_relays, make_factory
from lockctl.inbox import CommandInbox
from lockctl.server import open_server, socket_gid
from lockctl.watchdog import Notifier
from sync.config import DeviceConfig
from sync.errors import ConfigError
from sync.ledger import load_command_keys

log = logging.getLogger(__name__)


class Daemon:
    """The running lock controller; :meth:`run` until a signal or a fault."""

    def __init__(
        self,
        config: DeviceConfig,
        hardware: Hardware,
        *,
        relays_locked_at: float,
        install_signals: bool = True,
    ) -> None:
        self.config = config
        self.hardware = hardware
        self.install_signals = install_signals
        self.notifier = Notifier.from_env()
        self.events = EventWriter(
            config.store.path,
            busy_timeout=config.store.busy_timeout_seconds,
            reserve_bytes=config.store.reserve_bytes,
            timezone=config.device.timezone,
            started={
                "doors": [d.id for d in config.doors],
                "gpio": config.lock.pin_factory,
            },
        )
        self.relays_locked_at = relays_locked_at
        self.stop_reason = ""
        self.failure: BaseException | None = None
        self.controller: Controller | None = None
        self.inbox: CommandInbox | None = None
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def request_stop(self, reason: str) -> None:
        """Ask the control loop to end (call on the loop thread)."""
        self.stop_reason = self.stop_reason or reason
        if self._stop is not None:
            self._stop.set()

    async def run(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        controller = self.controller = Controller(
            self.config, self.hardware, self.events, self.notifier
        )
        controller.startup["relays_locked"] = self.relays_locked_at
        gid = socket_gid(self.config.lock.socket_group)
        if self.install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop, sig.name)
        threading.excepthook = self._thread_failed

        def wake() -> None:  # on gpiozero's thread: only hand over to the loop
            loop.call_soon_threadsafe(controller.wake.set)

        self.hardware.on_edge(wake)
        self.events.start()
        inbox = self.inbox = CommandInbox(
            controller, command_keys(self.config), clock_trusted=clock_is_synchronised
        )
        await inbox.restore()
        server = None
        inbox_task: asyncio.Task[None] | None = None
        try:
            server = await open_server(self.config.lock.socket, gid, controller)
            inbox_task = loop.create_task(inbox.run(self._stop))
            controller.startup["listening"] = time.monotonic()
            log.info(
                "lockctl ready",
                extra={"socket": str(self.config.lock.socket), "doors": list(controller.machines)},
            )
            self.notifier.notify("READY=1", f"STATUS=serving {len(controller.machines)} door(s)")
            await controller.run(self._stop)
            if self.failure is not None:
                raise self.failure
        except BaseException as exc:
            self.failure = self.failure or exc
            raise
        finally:
            controller.shutdown()
            self.notifier.notify("STOPPING=1")
            await self._close(server, inbox_task)

    async def _close(self, server: asyncio.Server | None, inbox: asyncio.Task[None] | None) -> None:
        if inbox is not None:
            self._stop_event().set()
            # A command being finished gets a moment; then it is left running
            # and the next start finishes it failed (interrupted).
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(inbox, 2.0)
        if server is not None:
            server.close()
            subscribers = self.controller.subscribers if self.controller else {}
            for cut_off in list(subscribers.values()):
                cut_off()
            self.config.lock.socket.unlink(missing_ok=True)
        clean = self.failure is None
        self.events.put(
            "lockctl.stopped",
            {"reason": self.stop_reason or "fault", "clean": clean},
        )
        await asyncio.to_thread(self.events.stop, clean=clean)
        self.notifier.close()

    def _stop_event(self) -> asyncio.Event:
        assert self._stop is not None
        return self._stop

    def _thread_failed(self, args: Any) -> None:
        log.error(
            "unhandled exception in a thread; stopping with every door locked",
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        )
        if self.failure is None:
            self.failure = args.exc_value or RuntimeError("thread failed")
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.request_stop, "fault")


def command_keys(config: DeviceConfig) -> dict[str, Ed25519PublicKey]:
    """Central's command keys; a missing or bad key file is logged and every
    remote command refused (``unknown_key``): it must not stop local check-in."""
    try:
        return load_command_keys(config.commands.public_key_file)
    except ConfigError as exc:
        log.error("command key unusable: remote commands refused", extra={"error": str(exc)})
        return {}


def serve(config: DeviceConfig, *, mock_preset_high: bool = False) -> int:
    """Run the daemon until SIGTERM/SIGINT (0) or a fault (exception, relocked)."""
    factory = make_factory(config.lock.pin_factory)
    relays = lock_relays(config, factory, preset_high=mock_preset_high)
    relays_locked_at = time.monotonic()
    hardware = Hardware(config, factory, relays)
    daemon = Daemon(config, hardware, relays_locked_at=relays_locked_at)
    try:
        asyncio.run(daemon.run())
    finally:
        levels = hardware.force_all_locked()
        log.info(
            "lockctl stopped; every relay de-energised",
            extra={"reason": daemon.stop_reason or "fault", "relay_levels": levels},
        )
        hardware.close()
    return 0
