"""``python -m demo``: every landed part on simulated hardware.

    python -m demo [--state-dir DIR] [--config device.toml] [--once]

Developer tooling, not product: no device or central command imports it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from foundation.cli import run_cli
from foundation.logs import configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m demo",
        description="Run the demo on simulated hardware (no config file needed).",
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="door device configuration instead of demo/device.toml"
        " (it must name its reader.credential_key_file)",
    )
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        help="where the demo keeps its stores, keys, sockets and logs"
        " (default $KIOSK_STATE_DIR or ~/.local/state/city-kiosk/demo)",
    )
    parser.add_argument("--once", action="store_true", help="report and exit instead of running on")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging("INFO")
    from demo.launch import run_demo

    return run_cli(
        lambda: run_demo(config_path=args.config, state_dir=args.state_dir, once=args.once)
    )
