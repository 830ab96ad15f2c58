"""``python -m deploy provision | install | rollback | listener-cert``: thin
adapters over :mod:`deploy.provision`, :mod:`deploy.install`,
:mod:`deploy.release` and :mod:`deploy.listener_cert`.

Only ``provision`` imports the device configuration schema (pydantic): the
installer runs on Debian's own python3 with python3-cryptography, before the
project's virtual environment exists.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from deploy.errors import DeployError, FleetUsageError, InstallError

log = logging.getLogger("deploy.cli")


def add_device_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("provision", help="write (or confirm) one device's bundle")
    p.add_argument("--fleet", required=True, type=Path, help="fleet folder (from 'fleet init')")
    p.add_argument("--id", required=True, help="device id (certificate CN)")
    p.add_argument("--facility", required=True, help="facility id")
    p.add_argument("--role", required=True, choices=("counter", "door"))
    p.add_argument(
        "--doors",
        nargs="+",
        default=[],
        metavar="ID:RELAY[:CONTACT[:EXIT]]",
        help="doors with their BCM pins, e.g. room-a:17:27:22",
    )
    p.add_argument("--name", default="", help="label shown on screens and the dashboard")
    p.add_argument("--central-url", default="", help="central's HTTPS URL (counter issuance)")
    p.add_argument(
        "--payment-backend", default="", choices=("", "sim"), help="counter: payment terminal"
    )
    p.add_argument(
        "--printer-backend", default="", choices=("", "file", "cups"), help="counter: printer"
    )
    p.add_argument("--cups-queue", default="", help="counter: CUPS queue (--printer-backend cups)")
    p.add_argument("--rotate", action="store_true", help="new key and certificate; revoke the old")
    p.add_argument("--out", type=Path, help="output folder (default FLEET/bundles)")

    p = sub.add_parser("install", help="install a bundle on this device (run as root)")
    p.add_argument("bundle", type=Path, help="BUNDLE.tar.gz or bundle folder")
    p.add_argument("--root", type=Path, default=Path("/"), help="install into this root (tests)")
    p.add_argument("--release", help="release name (default: version + source hash)")
    p.add_argument("--skip-apt", action="store_true", help="do not install Debian packages")
    p.add_argument("--wheelhouse", type=Path, help="offline: install Python packages from DIR")
    p.add_argument("--replace", action="store_true", help="allow another device id or fleet")
    p.add_argument("--check-only", action="store_true", help="verify and plan; change nothing")
    p.add_argument(
        "--display",
        choices=("kmsdrm", "cage"),
        default="kmsdrm",
        help="counter screen: SDL2 KMS/DRM (default) or the cage compositor",
    )
    p.add_argument("--ca-fingerprint", help="expected SHA-256 of the fleet CA (first install)")
    p.add_argument("--extra-packages", nargs="+", default=[], help="more Debian packages")
    p.add_argument(
        "--system-site-packages",
        action="store_true",
        help="let the venv see the interpreter's packages (e.g. Debian's python3-*)",
    )
    p.add_argument("--python", default=sys.executable, help="interpreter for the venv")

    p = sub.add_parser("rollback", help="switch back to the previous release")
    p.add_argument("--root", type=Path, default=Path("/"))

    p = sub.add_parser("listener-cert", help="central's device listener: TLS files from the fleet")
    p.add_argument("--fleet", required=True, type=Path, help="fleet folder (from 'fleet init')")
    p.add_argument("--out", required=True, type=Path, help="folder for central's listener files")
    p.add_argument("--name", action="append", default=[], help="host name or IP devices use")
    p.add_argument("--crl-only", action="store_true", help="copy the fleet CRL again only")
    p.add_argument("--host", default="127.0.0.1", help="listener address printed in the config")


def run_device_command(args: argparse.Namespace) -> int:
    from foundation.logs import (
        configure_logging,  # standard library only (runs on Debian's python3)
    )

    configure_logging("WARNING")
    try:
        if args.area == "provision":
            return _provision(args)
        if args.area == "install":
            return _install(args)
        if args.area == "listener-cert":
            return _listener_cert(args)
        from deploy.install import rollback_install

        rollback_install(args.root)
        return 0
    except InstallError as exc:
        log.error("install failed", extra={"error": str(exc), "exit_code": exc.exit_code})
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except FleetUsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DeployError as exc:
        log.error("deploy failed", extra={"error": str(exc)})
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _provision(args: argparse.Namespace) -> int:
    from deploy.provision import DoorSpec, ProvisionRequest, provision

    result = provision(
        ProvisionRequest(
            fleet_dir=args.fleet,
            device_id=args.id,
            facility=args.facility,
            role=args.role,
            doors=[DoorSpec.parse(text) for text in args.doors],
            rotate=args.rotate,
            out_dir=args.out,
            name=args.name,
            central_url=args.central_url,
            payment_backend=args.payment_backend,
            printer_backend=args.printer_backend,
            cups_queue=args.cups_queue,
        )
    )
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    state = "written" if result.changed else "unchanged"
    print(f"bundle {state}: {result.archive} (folder {result.folder})")
    print(f"fleet CA sha256: {result.ca_fingerprint}")
    if result.revoked_serial:
        print(
            f"revoked certificate {result.revoked_serial}: copy {args.fleet}/broker/crl.pem"
            " to the broker and restart it (mosquitto reads the CRL when it starts)"
        )
    elif result.new_identity:
        print("new device identity: reload the broker (SIGHUP) for its ACL")
    return 0


def _listener_cert(args: argparse.Namespace) -> int:
    from deploy.listener_cert import copy_fleet_crl, write_listener_files

    if args.crl_only:
        print(f"fleet CRL copied to {copy_fleet_crl(args.fleet, args.out)}")
        return 0
    files = write_listener_files(args.fleet, args.out, args.name)
    print("listener files written; in central's configuration:\n" + files.config_text(args.host))
    return 0


def _install(args: argparse.Namespace) -> int:
    from deploy.install import InstallOptions, install

    report = install(
        InstallOptions(
            bundle=args.bundle,
            root=args.root,
            release=args.release,
            skip_apt=args.skip_apt,
            wheelhouse=args.wheelhouse,
            replace=args.replace,
            check_only=args.check_only,
            display=args.display,
            ca_fingerprint=args.ca_fingerprint,
            extra_packages=tuple(args.extra_packages),
            system_site_packages=args.system_site_packages,
            python=args.python,
        )
    )
    for step in report.steps:
        print(f"  {step}")
    if args.check_only:
        print("check only: nothing was changed")
    elif not report.switched:
        print(f"release {report.release} was already current")
    else:
        print(f"installed release {report.release} for {report.device}")
    return 0
