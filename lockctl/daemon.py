"""``lockctl serve``: start-up order, signals and shutdown of the daemon.

Start-up order is a safety property:

1. the configuration is loaded (a bad file exits before any GPIO is touched;
   the external pull-downs keep every lock de-energised);
2. **every relay output is claimed de-energised** (``initial_value=False``),
   before inputs, store, socket or anything else;
3. inputs, buzzer and LED; the event writer thread (store, outbox and the
   ``lockctl.started`` event saying whether the previous run ended cleanly);
4. the socket is bound (0660, configured group); then ``READY=1`` to systemd.

Stop: SIGTERM/SIGINT end the control loop; every relay is de-energised and
read back first, then the socket closes, events are flushed (bounded) and the
process exits 0. Any exception in the control loop takes the same path
(relock first) and the process exits 1, so systemd restarts it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from typing import Any

from lockctl.controller import Controller
from lockctl.events import EventWriter
from lockctl.hardware import Hardware, lock_relays, make_factory
from lockctl.server import open_server, socket_gid
from lockctl.watchdog import Notifier
from sync.config import DeviceConfig

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
        server = None
        try:
            server = await open_server(self.config.lock.socket, gid, controller)
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
            await self._close(server)

    async def _close(self, server: asyncio.Server | None) -> None:
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

    def _thread_failed(self, args: Any) -> None:
        log.error(
            "unhandled exception in a thread; stopping with every door locked",
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        )
        if self.failure is None:
            self.failure = args.exc_value or RuntimeError("thread failed")
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.request_stop, "fault")


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
