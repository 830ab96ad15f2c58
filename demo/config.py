"""The demo's device configuration: ``demo/device.toml`` (simulated reader,
mock GPIO pins, local broker) written into the demo's state folder together
with the credential key it names.

Product code never loads this: every device command needs ``--config``. The
demo, and tests that want "the demo device", write it with
:func:`write_demo_config` and load the written file like any other.
"""

from __future__ import annotations

import os
from pathlib import Path

from cardreader.credential import write_new_key

KEY_FILE = "credential.key"


def demo_config_text() -> str:
    """The demo's device configuration, as TOML text (relative paths)."""
    return (Path(__file__).resolve().parent / "device.toml").read_text(encoding="utf-8")


def default_state_dir() -> Path:
    """Where the demo keeps its files unless ``KIOSK_STATE_DIR`` says."""
    env = os.environ.get("KIOSK_STATE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "city-kiosk" / "demo"


def ensure_key(state: Path) -> Path:
    """The demo fleet's credential key in ``state`` (created once, kept after)."""
    path = state / KEY_FILE
    if not path.exists():
        write_new_key(path)
    return path


def write_demo_config(state: Path, text: str | None = None) -> Path:
    """Write ``state/device.toml`` (the demo configuration, or ``text``) and
    the key file it names; returns the configuration's path."""
    state.mkdir(parents=True, exist_ok=True)
    ensure_key(state)
    path = state / "device.toml"
    path.write_text(demo_config_text() if text is None else text, encoding="utf-8")
    return path
