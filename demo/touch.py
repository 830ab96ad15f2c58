"""The demo's touchscreens: the product's check-in or issuance app (the same
objects ``python -m kiosk`` runs) with the developer panel attached.

    python -m demo.touch --config device.toml --vpcd-port N --pki-dir DIR

The panel's hotkeys put virtual cards into the vpcd slot on ``N`` (see
:mod:`demo.devpanel`); never on a real kiosk (there is no vpcd there).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from foundation.cli import add_config_argument, run_cli
from foundation.logs import configure_logging
from sync.config import DeviceConfig, load_config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m demo.touch", description="A demo touchscreen with the developer panel."
    )
    add_config_argument(parser)
    parser.add_argument("--vpcd-port", type=int, required=True, help="the reader's vpcd slot")
    parser.add_argument("--pki-dir", type=Path, required=True, help="the test JPKI")
    return parser


def run_with_panel(config: DeviceConfig, vpcd_port: int, pki_dir: Path) -> int:
    """The configured touchscreen, with the panel attached once it is up, and
    card enrolment on its attract screen when the configuration enables it
    (as ``python -m kiosk`` does)."""
    from demo.devpanel import COUNTER_HELP, COUNTER_KEYS, DevPanel
    from kiosk.enrolment.ui.mode import enrolment_mode_for

    mode = enrolment_mode_for(config)
    # Kivy holds bound-method callbacks (hotkeys, the strip's layout and its
    # relay poll) weakly: the panel must stay referenced while the app runs.
    panels: list[DevPanel] = []

    if config.device.role == "counter":
        from kiosk.issuance.ui.run import run_issuance

        def counter_panel(_app: Any) -> None:
            panels.append(DevPanel(vpcd_port, pki_dir, None, keys=COUNTER_KEYS,
                                   help_text=COUNTER_HELP))  # fmt: skip
            panels[-1].attach(make_room=True)

        return run_issuance(config, on_started=counter_panel, mode=mode)
    from kiosk.checkin.ui.run import run_touchscreen

    def door_panel(app: Any) -> None:
        door = app.session.service.door
        panels.append(DevPanel(vpcd_port, pki_dir, config.lock.socket, door))
        panels[-1].attach(make_room=True)

    return run_touchscreen(config, on_started=door_panel, mode=mode)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging("INFO")
    os.environ.setdefault("KIVY_NO_ARGS", "1")

    def body() -> int:
        config = load_config(args.config)
        configure_logging(config.logging.level)
        return run_with_panel(config, args.vpcd_port, args.pki_dir)

    return run_cli(body)


if __name__ == "__main__":
    raise SystemExit(main())
