"""The doctor's command line, apart from the checks: ``python -m deploy``
builds its parser on the installer's plain Debian python3 too, where the
checks' dependencies (pydantic, paho) are not installed."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_CONFIG = Path("/etc/city-kiosk/device.toml")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help=f"device configuration (default {DEFAULT_CONFIG})",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--card-test", action="store_true", help="also identify a presented card (its kind only)"
    )
    parser.add_argument(
        "--card-wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long the card test waits for a card",
    )
    parser.add_argument(
        "--relay-click", metavar="DOOR", help="unlock DOOR for one second after a confirmation"
    )
    parser.add_argument("--yes", action="store_true", help="do not ask before the relay click")
    parser.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="timeout of each network and lock controller check",
    )
