"""A device writer as a real process, driven line by line from a test
(``python -m tests.integration.disk_writers kiosk|lockctl CONFIG``).

``kiosk``: the check-in service exactly as the touchscreen builds it
(:func:`kiosk.checkin.wiring.build_checkin_service`) and its outbox.
``append TAG N`` appends N events and prints ``ok N SEQ`` or
``refused N ERRORTYPE`` for each; ``tap`` records a card the kiosk cannot use
(the service's own path, which must never raise); ``space`` prints whether
appends are refused.

``lockctl``: lockctl's :class:`~lockctl.events.EventWriter` with the store
settings of the configuration. ``put TAG N`` queues N events; ``status``
prints ``status BACKLOG WRITTEN LAST_ERROR``.

Every command ends with ``done``; ``quit`` stops (lockctl: an orderly stop).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from kiosk.checkin.wiring import build_checkin_service
from kiosk.errors import LockUnavailable
from lockctl.events import EventWriter
from sync.config import load_config
from sync.errors import StoreError


class NoLock:
    """Check-in's lock port for a test that records refusals only."""

    def unlock(self, door: str, seconds: float, reason: str, ref: str) -> float:
        raise LockUnavailable("no lock in this test")


def serve(commands: dict[str, Callable[[list[str]], None]]) -> None:
    """Answer commands from stdin until ``quit``; each answer ends with ``done``."""
    print("ready", flush=True)
    for line in sys.stdin:
        words = line.split()
        if words[0] == "quit":
            return
        commands[words[0]](words[1:])
        print("done", flush=True)


def kiosk(config_path: str) -> None:
    config = load_config(config_path)
    service, close = build_checkin_service(config, NoLock(), clock_trusted=lambda: True)
    outbox = service.outbox

    def append(args: list[str]) -> None:
        for n in range(int(args[1])):
            try:
                event = outbox.append("checkin.test", {"writer": args[0], "n": n})
                print("ok", n, event.seq, flush=True)
            except StoreError as exc:
                print("refused", n, type(exc).__name__, flush=True)

    serve(
        {
            "append": append,
            "tap": lambda _: print("tap", service.card_not_usable(True).outcome.value),
            "space": lambda _: print("space", "low" if outbox.store.space_low() else "ok"),
        }
    )
    close()


def lockctl(config_path: str) -> None:
    config = load_config(config_path)
    writer = EventWriter(
        config.store.path,
        busy_timeout=config.store.busy_timeout_seconds,
        reserve_bytes=config.store.reserve_bytes,
        timezone=config.device.timezone,
        started={"doors": [], "gpio": "mock"},
        retry_seconds=0.2,
    )
    writer.start()

    def put(args: list[str]) -> None:
        for n in range(int(args[1])):
            writer.put("door.test", {"writer": args[0], "n": n})

    def status(_: list[str]) -> None:
        error = (writer.last_error or "-").split(":")[0]
        print("status", writer.backlog, writer.written, error)

    serve({"put": put, "status": status})
    writer.stop(clean=True)


if __name__ == "__main__":
    {"kiosk": kiosk, "lockctl": lockctl}[sys.argv[1]](sys.argv[2])
