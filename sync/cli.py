"""``python -m sync``: the sync agent, and the device store, outbox and
configuration from a shell.

Thin adapters over :mod:`sync.agent`, :mod:`sync.config`, :mod:`sync.store`,
:mod:`sync.outbox` and :mod:`sync.cache_report`; errors become one clear line
on stderr (plus a structured log line) and a non-zero exit.

Exit codes: 0 ok, 1 failure reported by the command, 2 usage error,
3 configuration error, 4 store error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from foundation.cli import add_config_argument, run_cli
from foundation.errors import EXIT_FAILED, EXIT_OK, EXIT_STORE
from foundation.logs import configure_logging
from sync.cache_report import cache_report, format_report
from sync.config import DeviceConfig, load_config
from sync.headroom import DISK_ACTION, disk_report
from sync.outbox import Outbox
from sync.reservations import ReservationCache
from sync.store import SCHEMA_VERSION, Store, open_store

log = logging.getLogger("sync.cli")


def _print(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def cmd_config(config: DeviceConfig, args: argparse.Namespace) -> int:
    # pushed_version: central's pushed configuration laid over the file (None: the file alone).
    if args.show:
        _print({**config.model_dump(mode="json"), "pushed_version": config.pushed_version})
    else:
        doors = ", ".join(d.id for d in config.doors) or "none"
        pushed = config.pushed_version
        also = f", pushed configuration version {pushed}" if pushed is not None else ""
        print(f"{config.source}: valid (device {config.device.id}, doors: {doors}{also})")
    return 0


def _open(config: DeviceConfig, *, read_only: bool = False) -> Store:
    return open_store(
        config.store.path,
        busy_timeout=config.store.busy_timeout_seconds,
        reserve_bytes=config.store.reserve_bytes,
        read_only=read_only,
    )


def _open_to_read(config: DeviceConfig) -> Store:
    """An existing store read-only: no migration, no write, so it opens on a
    full or read-only disk; a missing one is created as before."""
    return _open(config, read_only=config.store.path.is_file())


def cmd_store_check(config: DeviceConfig, args: argparse.Namespace) -> int:
    with _open_to_read(config) as store:
        disk = disk_report(config.store.path, config.store.reserve_bytes)
        problems = store.integrity_problems()
        outbox = Outbox(store)
        report: dict[str, Any] = {
            "store": str(store.path),
            "schema_version": SCHEMA_VERSION,
            "integrity": problems or "ok",
            "outbox_depth": outbox.depth(),
            "oldest_unsent": outbox.oldest_created(),
            "disk": disk,
        }
    _print(report)
    if disk["read_only"]:
        return _disk_problem(store, disk, "is read-only: the store cannot be written", READ_ONLY)
    if disk["appends_refused"]:
        return _disk_problem(store, disk, "is full: new events are refused", DISK_ACTION)
    return EXIT_FAILED if problems else EXIT_OK


READ_ONLY = "Check the disk (dmesg), then remount it read-write or replace it"


def _disk_problem(store: Store, disk: dict[str, Any], problem: str, action: str) -> int:
    """The report is printed; one line says what is wrong (exit 4, a store error)."""
    print(f"error: device store {store.path}: its disk {problem}. {action}.", file=sys.stderr)
    log.error("store disk not writable", extra={"store": str(store.path), **disk})
    return EXIT_STORE


def cmd_outbox_list(config: DeviceConfig, args: argparse.Namespace) -> int:
    with _open_to_read(config) as store:
        for event in Outbox(store).pending(limit=args.limit):
            print(json.dumps(event.to_wire(), ensure_ascii=False))
    return 0


def cmd_outbox_append(config: DeviceConfig, args: argparse.Namespace) -> int:
    try:
        data = json.loads(args.data)
    except json.JSONDecodeError as exc:
        print(f"error: --data is not valid JSON: {exc}", file=sys.stderr)
        return 2
    with _open(config) as store:
        event = Outbox(store).append(args.type, data)
    _print(event.to_wire())
    return 0


def cmd_commands(config: DeviceConfig, args: argparse.Namespace) -> int:
    """The command ledger for a technician: no arguments, no attachments."""
    with open_store(config.store.path, busy_timeout=config.store.busy_timeout_seconds) as store:
        rows = store.query(
            "SELECT id, name, target, state, code, received, finished, reported FROM commands"
            " ORDER BY received DESC LIMIT ?",
            (args.limit,),
        )
    for row in rows:
        entry = dict(row)
        entry["reported"] = bool(entry["reported"])
        for key in ("received", "finished"):
            if entry[key] is not None:
                entry[key] = datetime.fromtimestamp(entry[key], UTC).isoformat(timespec="seconds")
        print(json.dumps(entry, ensure_ascii=False))
    return 0


def cmd_reservations(config: DeviceConfig, args: argparse.Namespace) -> int:
    with _open_to_read(config) as store:
        report = cache_report(ReservationCache(store, config.device.facility))
    if args.json:
        _print(report.as_dict())
    else:
        print(format_report(report))
    return 0


def cmd_run(config: DeviceConfig, args: argparse.Namespace) -> int:
    import signal

    from sync.agent import Agent

    agent = Agent(config)

    def _stop(signum: int, _frame: object) -> None:
        log.info("stop requested", extra={"signal": signal.Signals(signum).name})
        agent.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    agent.run()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sync",
        description="The device sync agent, and store, outbox and configuration tools.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the sync agent (MQTT connection to central)")
    add_config_argument(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("config", help="validate the device configuration (and print it)")
    add_config_argument(p)
    p.add_argument("--show", action="store_true", help="print the whole configuration as JSON")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser(
        "store-check",
        help="check the store's integrity and its disk (read-only; creates a missing store)",
    )
    add_config_argument(p)
    p.set_defaults(func=cmd_store_check)

    p = sub.add_parser("outbox", help="list events waiting for central's confirmation")
    add_config_argument(p)
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=cmd_outbox_list)

    p = sub.add_parser(
        "commands", help="the remote-command ledger, newest first (no arguments shown)"
    )
    add_config_argument(p)
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_commands)

    p = sub.add_parser(
        "reservations",
        help="show the reservation cache: version, hash, counts and windows per door"
        " (no card references or codes)",
    )
    add_config_argument(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_reservations)

    p = sub.add_parser("append", help="append an event to the outbox (for tests and checks)")
    add_config_argument(p)
    p.add_argument("type", help="dotted event type, e.g. test.ping")
    p.add_argument("--data", default="{}", help="event data as a JSON object")
    p.set_defaults(func=cmd_outbox_append)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging("WARNING")

    def body() -> int:
        config = load_config(args.config)
        configure_logging(config.logging.level)
        return int(args.func(config, args))

    return run_cli(body)
