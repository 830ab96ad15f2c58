"""``python -m central opendata publish --month YYYY-MM [--out DIR]``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from central.cli_common import open_db
from central.config import CentralConfig
from central.opendata.publish import publish

WithConfig = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]


def base_url(config: CentralConfig) -> str:
    """The public address of /opendata/ (ends with a slash), or ""."""
    if config.opendata.base_url:
        return config.opendata.base_url.rstrip("/") + "/"
    if config.api.public_url:
        return config.api.public_url.rstrip("/") + "/opendata/"
    return ""


def cmd_publish(config: CentralConfig, args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else config.opendata.folder
    labels = {k.id: (k.label_ja, k.label_en) for k in config.issuance.kinds}
    with open_db(config) as db:
        done = publish(
            db,
            config.opendata,
            args.month,
            out=out,
            base_url=base_url(config),
            kind_labels=labels,
            now=datetime.now(UTC),
        )
    print(
        f"published {done.month} in {done.folder}: {', '.join(done.files)} "
        f"({done.withheld_rows} rows with withheld cells)"
    )
    return 0


def add_commands(sub: Any, with_config: WithConfig) -> None:
    p = sub.add_parser("opendata", help="monthly open data (docs/opendata.md)")
    osub = p.add_subparsers(dest="opendata_command", required=True)
    c = with_config(
        osub.add_parser(
            "publish", help="publish a month's datasets (CSV, datapackage.json, catalog.jsonld)"
        )
    )
    c.add_argument("--month", required=True, help="YYYY-MM, a month that is over")
    c.add_argument("--out", help="folder (default: opendata.folder)")
    c.set_defaults(func=cmd_publish)
