"""``python -m central registry ...`` and ``python -m central issuance ...``.

Thin adapters over :class:`central.issuance.registry.sqlite.SqliteRegistry`, the
issuance listener alone and :func:`central.issuance.orders.issuance_stats`.
``registry list`` shows references and flags only, never names.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

from cryptography import x509

from central.cli_common import EXIT_USAGE, open_db
from central.config import CentralConfig
from central.issuance.api import MONTH
from central.issuance.orders import issuance_stats
from central.issuance.registry.adapter import Resident
from central.issuance.registry.sqlite import SqliteRegistry, certificate_key
from central.issuance.server import build_stack, issuance_server

log = logging.getLogger("central.cli")


def _registry(config: CentralConfig, create: bool = False) -> SqliteRegistry:
    return SqliteRegistry(config.issuance.registry_file, min_age=config.issuance.min_age,
                          create=create)  # fmt: skip


def cmd_registry_add(config: CentralConfig, args: argparse.Namespace) -> int:
    registry = _registry(config, create=True)
    try:
        return _add_resident(registry, args)
    finally:
        registry.close()


def _add_resident(registry: SqliteRegistry, args: argparse.Namespace) -> int:
    try:
        birth, moved_in = date.fromisoformat(args.birth_date), date.fromisoformat(args.moved_in)
    except ValueError:
        print("error: --birth-date and --moved-in must be YYYY-MM-DD", file=sys.stderr)
        return EXIT_USAGE
    resident = Resident(
        ref=args.ref or registry.reference_for(args.name, birth, args.household),
        name=args.name, birth_date=birth, sex=args.sex,
        address=args.address, household=args.household, relationship=args.relationship,
        moved_in=moved_in, status=args.status,
        support_measures=args.support_measures, honseki=args.honseki, hittousha=args.hittousha,
        honseki_here=args.honseki_here, seal_number=args.seal_number,
        income_yen=args.income_yen, tax_yen=args.tax_yen,
    )  # fmt: skip
    registry.add(resident)
    print(resident.ref)
    return 0


def cmd_registry_list(config: CentralConfig, args: argparse.Namespace) -> int:
    registry = _registry(config)
    try:
        rows = [{k: v for k, v in asdict(r).items()
                 if k in ("ref", "household", "status", "support_measures", "honseki_here")}
                for r in registry.residents()]  # fmt: skip
    finally:
        registry.close()
    print(json.dumps(rows, ensure_ascii=False, indent=2))
    return 0


def cmd_registry_link(config: CentralConfig, args: argparse.Namespace) -> int:
    try:
        raw = Path(args.certificate).read_bytes()
        cert = (x509.load_pem_x509_certificate(raw) if raw.lstrip().startswith(b"-----")
                else x509.load_der_x509_certificate(raw))  # fmt: skip
    except (OSError, ValueError) as exc:
        print(f"error: {args.certificate}: not a certificate ({exc})", file=sys.stderr)
        return EXIT_USAGE
    registry = _registry(config)
    try:
        registry.link(args.ref, certificate_key(cert))
    finally:
        registry.close()
    print(f"certificate serial {cert.serial_number:x} linked to {args.ref}")
    return 0


def cmd_issuance_serve(config: CentralConfig, args: argparse.Namespace) -> int:
    with open_db(config) as db:
        stack = build_stack(config.issuance, db)
        try:
            listener = config.devices.listener
            port = args.port or (listener.port if listener is not None else 0)
            log.info("issuance listener starting", extra={"port": port})
            issuance_server(config, stack, args.host or "", args.port or 0).run()
        finally:
            stack.close()
    return 0


def cmd_issuance_stats(config: CentralConfig, args: argparse.Namespace) -> int:
    if not MONTH.match(args.month):
        print("error: --month must be YYYY-MM", file=sys.stderr)
        return EXIT_USAGE
    with open_db(config) as db:
        kinds = issuance_stats(db, args.month, config.issuance.zone)
    print(json.dumps({"month": args.month, "kinds": [asdict(k) for k in kinds]}, indent=2))
    return 0


def add_commands(sub: Any, with_config: Callable[[argparse.ArgumentParser], Any]) -> None:
    p = sub.add_parser("registry", help="the reference resident registry (synthetic, SQLite)")
    rsub = p.add_subparsers(dest="registry_command", required=True)
    a = with_config(rsub.add_parser("add", help="add a synthetic resident (prints its ref)"))
    # --sex and --relationship left out are "not recorded" on a certificate.
    for flag, default in (("--ref", ""), ("--sex", ""), ("--relationship", ""),
                          ("--status", "resident"), ("--honseki", ""), ("--hittousha", ""),
                          ("--seal-number", "")):  # fmt: skip
        a.add_argument(flag, default=default)
    for flag in ("--name", "--birth-date", "--address", "--household", "--moved-in"):
        a.add_argument(flag, required=True)
    a.add_argument("--support-measures", action="store_true", help="支援措置: counter only")
    a.add_argument("--honseki-here", action="store_true", help="本籍 is in this municipality")
    a.add_argument("--income-yen", type=int, default=0)
    a.add_argument("--tax-yen", type=int, default=0)
    a.set_defaults(func=cmd_registry_add)
    with_config(rsub.add_parser("list", help="references and flags (no names)")).set_defaults(
        func=cmd_registry_list)  # fmt: skip
    link = with_config(rsub.add_parser("link-cert", help="link a user-auth certificate"))
    link.add_argument("ref")
    link.add_argument("certificate", help="PEM or DER file")
    link.set_defaults(func=cmd_registry_link)
    p = sub.add_parser("issuance", help="certificate issuance (mutual-TLS listener, statistics)")
    isub = p.add_subparsers(dest="issuance_command", required=True)
    serve = with_config(isub.add_parser("serve", help="run the issuance listener alone"))
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_issuance_serve)
    stats = with_config(isub.add_parser("stats", help="certificates issued per kind in a month"))
    stats.add_argument("--month", required=True, help="YYYY-MM (local time)")
    stats.set_defaults(func=cmd_issuance_stats)
