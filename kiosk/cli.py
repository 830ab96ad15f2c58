"""``python -m kiosk``: the kiosk's entry point.

    python -m kiosk --config device.toml [--door ID] [--headless]
    python -m kiosk voice build --config device.toml

Runs the check-in touchscreen (or, with ``--headless``, the door terminal)
for one door of the configuration; with ``device.role = "counter"`` it runs
the certificate issuance touchscreen instead. With ``[enrolment] enabled``
either touchscreen offers card enrolment (:mod:`kiosk.enrolment`). The demo is ``python -m demo``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from foundation.cli import add_config_argument, run_cli
from foundation.logs import configure_logging
from sync.config import load_config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kiosk",
        description="City kiosk: facility check-in touchscreen or headless door terminal,"
        " or the certificate issuance touchscreen of a counter kiosk.",
    )
    add_config_argument(parser)
    parser.add_argument("--door", help="door id to serve (default: the first door)")
    parser.add_argument("--headless", action="store_true", help="door terminal without a screen")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["voice"]:  # the voice guidance's audio cache (kiosk.voice.cli)
        from kiosk.voice.cli import main as voice_main

        return voice_main(argv[1:])
    args = build_parser().parse_args(argv)
    configure_logging("INFO")

    def body() -> int:
        config = load_config(args.config)
        configure_logging(config.logging.level)
        if args.headless:
            from kiosk.checkin.headless import run_headless

            return run_headless(config, door=args.door)
        os.environ.setdefault("KIVY_NO_ARGS", "1")
        # Card enrolment opens from either touchscreen; neither flow imports it.
        from kiosk.enrolment.ui.mode import enrolment_mode_for

        mode = enrolment_mode_for(config)
        if config.device.role == "counter":  # certificate issuance
            from kiosk.issuance.ui.run import run_issuance

            return run_issuance(config, mode=mode)
        from kiosk.checkin.ui.run import run_touchscreen

        return run_touchscreen(config, door=args.door, mode=mode)

    return run_cli(body)
