"""``python -m lockctl``: the daemon and a thin client over its socket.

    python -m lockctl serve --config device.toml
    python -m lockctl unlock room-a --seconds 5 [--reason staff] [--ref R]
    python -m lockctl lock room-a
    python -m lockctl status
    python -m lockctl watch

Exit codes: 0 ok, 1 refused or failed, 2 usage, 3 configuration error,
4 store error, 5 GPIO unusable (pin in use, no pin factory),
6 daemon not reachable.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from foundation.cli import add_config_argument, run_cli
from foundation.logs import configure_logging
from lockctl.client import LockClient
from lockctl.errors import HardwareError, LockctlError, LockctlUnavailableError, RequestError
from sync.config import DeviceConfig, load_config

log = logging.getLogger("lockctl.cli")

EXIT_FAILED, EXIT_HARDWARE, EXIT_UNAVAILABLE = 1, 5, 6


def _print(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


def _socket(config: DeviceConfig, args: argparse.Namespace) -> Path:
    return Path(args.socket) if args.socket else config.lock.socket


def cmd_serve(config: DeviceConfig, args: argparse.Namespace) -> int:
    from lockctl.daemon import serve

    if args.mock_relays_start_energised and config.lock.pin_factory != "mock":
        print("error: --mock-relays-start-energised needs lock.pin_factory = mock", file=sys.stderr)
        return 2
    return serve(config, mock_preset_high=args.mock_relays_start_energised)


def cmd_unlock(config: DeviceConfig, args: argparse.Namespace) -> int:
    with LockClient(_socket(config, args)) as client:
        _print(client.unlock(args.door, args.seconds, reason=args.reason, ref=args.ref))
    return 0


def cmd_lock(config: DeviceConfig, args: argparse.Namespace) -> int:
    with LockClient(_socket(config, args)) as client:
        _print(client.lock(args.door))
    return 0


def cmd_status(config: DeviceConfig, args: argparse.Namespace) -> int:
    with LockClient(_socket(config, args)) as client:
        reply = client.status()
    if not args.json:
        for door in reply.get("doors", []):
            door.pop("mock_relay_history", None)
    _print(reply)
    return 0


def cmd_watch(config: DeviceConfig, args: argparse.Namespace) -> int:
    with LockClient(_socket(config, args)) as client:
        try:
            for message in client.watch():
                print(json.dumps(message, ensure_ascii=False), flush=True)
        except KeyboardInterrupt:
            return 0
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lockctl",
        description="Lock controller: the fail-secure GPIO door daemon and its client.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the daemon (the only process that touches GPIO)")
    add_config_argument(p)
    p.add_argument(
        "--mock-relays-start-energised",
        action="store_true",
        help="tests only, mock pins only: start with the relay lines high (a stuck line)",
    )
    p.set_defaults(func=cmd_serve)

    def client_parser(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        add_config_argument(p)
        p.add_argument("--socket", metavar="PATH", help="daemon socket (default: lock.socket)")
        return p

    p = client_parser("unlock", "unlock a door for N seconds (capped at lock.max_unlock_seconds)")
    p.add_argument("door")
    p.add_argument("--seconds", type=float, help="default: the door's unlock_seconds")
    p.add_argument("--reason", default="staff", choices=["staff", "remote", "check-in"])
    p.add_argument("--ref", help="opaque reference recorded with the event")
    p.set_defaults(func=cmd_unlock)

    p = client_parser("lock", "lock a door now")
    p.add_argument("door")
    p.set_defaults(func=cmd_lock)

    p = client_parser("status", "every door's state and actual relay level")
    p.add_argument("--json", action="store_true", help="full reply (with mock pin history)")
    p.set_defaults(func=cmd_status)

    p = client_parser("watch", "print state changes as they happen (Ctrl-C to stop)")
    p.set_defaults(func=cmd_watch)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging("WARNING")

    def body() -> int:
        config = load_config(args.config)
        configure_logging(config.logging.level if args.command == "serve" else "WARNING")
        try:
            return int(args.func(config, args))
        except RequestError as exc:
            print(
                f"error: refused by the lock controller: {exc.message} ({exc.code})",
                file=sys.stderr,
            )
            return EXIT_FAILED
        except LockctlUnavailableError as exc:
            log.error("lock controller unreachable", extra={"error": str(exc)})
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_UNAVAILABLE
        except HardwareError as exc:
            log.error("GPIO unusable", extra={"error": str(exc)})
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_HARDWARE
        except LockctlError as exc:
            log.error("lockctl failed", extra={"error": str(exc)})
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_FAILED

    return run_cli(body)
