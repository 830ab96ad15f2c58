"""``python -m central import members|reservations FILE.csv``: the import
from an existing booking system (docs/booking.md). Prints a JSON report (rows
created, updated, unchanged, and every bad row with its line); exits 1 when
any row was refused, after applying the good ones."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from central.cli_common import EXIT_FAILED, EXIT_USAGE, open_db
from central.config import CentralConfig
from central.reservations.importer import Importer, ImportReport
from central.reservations.store import ReservationStore


def cmd_import(config: CentralConfig, args: argparse.Namespace) -> int:
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        print(f"error: {args.file}: cannot be read ({exc.strerror})", file=sys.stderr)
        return EXIT_USAGE
    actor = f"cli:import:{Path(args.file).name}"[:80]
    with open_db(config) as db:
        importer = Importer(db, ReservationStore(db), timezone=args.timezone)
        if args.kind == "members":
            report = importer.members_csv(data, actor)
        else:
            report = importer.reservations_csv(data, actor)
    print(json.dumps(_report(report), ensure_ascii=False, indent=2))
    for error in report.errors:
        print(f"{args.file}:{error.line}: {error.code}: {error.message}", file=sys.stderr)
    return EXIT_FAILED if report.errors else 0


def _report(report: ImportReport) -> dict[str, Any]:
    return {
        "created": report.created, "updated": report.updated, "unchanged": report.unchanged,
        "errors": [{"line": e.line, "code": e.code, "column": e.column, "message": e.message}
                   for e in report.errors],
    }  # fmt: skip


def add_commands(sub: Any, with_config: Callable[[argparse.ArgumentParser], Any]) -> None:
    help_text = "import members or reservations from an existing booking system's CSV"
    p = with_config(sub.add_parser("import", help=help_text, description=help_text))
    p.add_argument("kind", choices=("members", "reservations"))
    p.add_argument("file", help="CSV, UTF-8 or Shift_JIS (columns: docs/booking.md)")
    p.add_argument("--timezone", default="Asia/Tokyo",
                   help="zone of times without an offset (default: Asia/Tokyo)")  # fmt: skip
    p.set_defaults(func=cmd_import)
