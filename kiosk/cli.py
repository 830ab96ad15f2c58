"""``python -m kiosk``: the kiosk's entry point.

    python -m kiosk [--config device.toml] [--door ID] [--headless]
    python -m kiosk demo [--state-dir DIR] [--once]

The first form runs the check-in touchscreen (or, with ``--headless``, the
door terminal) for one door of the configuration; with ``device.role =
"counter"`` it runs the certificate issuance touchscreen instead. ``demo`` runs every part
that has landed on simulated hardware with the embedded demo configuration.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from foundation.cli import add_config_argument, run_cli
from foundation.logs import configure_logging
from sync.config import load_config


def build_run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kiosk",
        description="City kiosk: facility check-in touchscreen or headless door terminal."
        " 'python -m kiosk demo --help' for the demo.",
    )
    add_config_argument(parser)
    parser.add_argument("--door", help="door id to serve (default: the first door)")
    parser.add_argument("--headless", action="store_true", help="door terminal without a screen")
    parser.add_argument(
        "--dev-panel",
        metavar="VPCD_PORT",
        type=int,
        help="demo only: hotkeys putting virtual cards into the vpcd slot on this port",
    )
    parser.add_argument("--pki-dir", help="demo only: test PKI for the virtual My Number Card")
    parser.add_argument(
        "--measure-startup",
        action="store_true",
        help="print seconds from process start to the first drawn frame, then exit (benchmarks)",
    )
    return parser


def build_demo_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kiosk demo",
        description="Run the demo on simulated hardware (no config file needed).",
    )
    add_config_argument(parser)
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        help="where the demo keeps its store and sockets"
        " (default $KIOSK_STATE_DIR or ~/.local/state/city-kiosk/demo)",
    )
    parser.add_argument("--once", action="store_true", help="report and exit instead of running on")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    configure_logging("INFO")
    if args_list[:1] == ["demo"]:
        demo = build_demo_parser().parse_args(args_list[1:])
        from demo.launch import run_demo

        return run_cli(
            lambda: run_demo(config_path=demo.config, state_dir=demo.state_dir, once=demo.once)
        )
    args = build_run_parser().parse_args(args_list)

    def body() -> int:
        config = load_config(args.config)
        configure_logging(config.logging.level)
        if args.headless:
            from kiosk.checkin.headless import run_headless

            return run_headless(config, door=args.door)
        os.environ.setdefault("KIVY_NO_ARGS", "1")
        dev = (args.dev_panel, Path(args.pki_dir or ".")) if args.dev_panel else None
        if config.device.role == "counter":  # certificate issuance
            from kiosk.issuance.ui.run import run_issuance

            return run_issuance(config, measure_startup=args.measure_startup, dev_panel=dev)
        from kiosk.checkin.ui.run import run_touchscreen

        return run_touchscreen(
            config, door=args.door, measure_startup=args.measure_startup, dev_panel=dev
        )

    return run_cli(body)
