"""``python -m kiosk``: the kiosk's entry point.

``demo`` runs every part that has landed on simulated hardware with the
embedded demo configuration.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from sync.cli import add_config_argument, run_cli
from sync.logs import configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kiosk",
        description="City kiosk: certificate issuance and facility check-in.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="run the demo on simulated hardware (no config file needed)")
    add_config_argument(p)
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        help="where the demo keeps its store and sockets"
        " (default $KIOSK_STATE_DIR or ~/.local/state/city-kiosk/demo)",
    )
    p.add_argument("--once", action="store_true", help="report and exit instead of running on")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging("INFO")
    from kiosk.demo import run_demo

    return run_cli(
        lambda: run_demo(config_path=args.config, state_dir=args.state_dir, once=args.once)
    )
