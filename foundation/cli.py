"""The command-line runner every ``python -m <package>`` shares.

An error of ours that reaches the command line becomes one clear line on
stderr, a structured log line and the exit code its class carries
(:mod:`foundation.errors`): 1 failure, 2 usage, 3 configuration, 4 store.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from foundation.errors import ConfigError, ProductError

log = logging.getLogger("foundation.cli")


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        required=True,
        help="device configuration file (TOML), e.g. /etc/city-kiosk/device.toml",
    )


def run_cli(main: Callable[[], int]) -> int:
    """Run a command's body, turning our errors into one message and an exit code."""
    try:
        return main()
    except ConfigError as exc:
        log.error("configuration invalid", extra={"file": exc.path, "problems": exc.problems})
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ProductError as exc:
        extra: dict[str, object] = {"error": str(exc), "error_type": type(exc).__name__}
        store = getattr(exc, "path", None)
        if store is not None:
            extra["path"] = store
        log.error("command failed", extra=extra)
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
