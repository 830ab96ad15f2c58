"""``python -m deploy``: fleet PKI and broker configuration (deploy/fleet.py),
device bundles (``provision``), the on-device installer (``install``,
``rollback``; see docs/provisioning.md) and the device self-test ``doctor``
(deploy/doctor.py, docs/doctor.md).

Exit codes: 0 ok, 1 failure, 2 usage error; ``install``/``rollback`` use the
codes of :data:`deploy.install.EXIT_CODES`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from deploy.cli_device import add_device_commands, run_device_command
from deploy.doctor_args import add_arguments as add_doctor_arguments
from deploy.errors import FleetError, FleetUsageError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m deploy",
        description="Fleet PKI, device bundles and the on-device installer.",
    )
    sub = parser.add_subparsers(dest="area", required=True)
    fleet = sub.add_parser("fleet", help="fleet CA, broker config, device identities")
    cmds = fleet.add_subparsers(dest="command", required=True)

    p = cmds.add_parser(
        "init", help="create the fleet CA, broker cert and config, central identity"
    )
    p.add_argument("dir", type=Path, help="fleet folder to create")
    p.add_argument("--broker-host", default="localhost", help="broker DNS name (certificate SAN)")
    p.add_argument("--broker-port", type=int, default=8883)

    p = cmds.add_parser("device", help="issue a device key, certificate and device.toml")
    p.add_argument("dir", type=Path, help="fleet folder (from 'fleet init')")
    p.add_argument("--id", required=True, help="device id (certificate CN, MQTT username)")
    p.add_argument("--facility", required=True, help="facility id whose reservations it reads")
    p.add_argument("--role", choices=("counter", "door"), help="role carried by the certificate")
    p.add_argument(
        "--store-path",
        default="/var/lib/city-kiosk/device.db",
        help="store.path written into device.toml",
    )
    p = cmds.add_parser(
        "command-key",
        help="central's command signing key (secrets/command.key): create it if missing,"
        " print its key id",
    )
    p.add_argument("dir", type=Path, help="fleet folder (from 'fleet init')")
    add_device_commands(sub)
    doctor = sub.add_parser("doctor", help="self-test of an installed device (docs/doctor.md)")
    add_doctor_arguments(doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.area == "doctor":  # imported here: the installer's python3 lacks its needs
        from deploy.doctor import run_doctor

        return run_doctor(args)
    if args.area != "fleet":
        return run_device_command(args)
    from deploy.fleet import COMMAND_KEY, add_device, init_fleet, load_fleet

    try:
        if args.command == "init":
            fleet = init_fleet(args.dir, broker_host=args.broker_host, broker_port=args.broker_port)
            print(f"fleet created in {fleet.root} (broker {fleet.broker_host}:{fleet.broker_port})")
        elif args.command == "command-key":
            # A fleet made before remote commands gets its key here (idempotent).
            fleet = load_fleet(args.dir)
            created = not (fleet.root / "secrets" / COMMAND_KEY).exists()
            print(f"{fleet.command_key()}: key id {fleet.command_key_id()}"
                  + (" (created)" if created else ""))  # fmt: skip
        else:
            folder = add_device(
                args.dir, args.id, args.facility, store_path=args.store_path, role=args.role
            )
            print(f"device {args.id} issued in {folder}; reload the broker (SIGHUP) for its ACL")
    except FleetUsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FleetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


sys.exit(main())
