"""The demo's device configuration: ``demo/device.toml`` (simulated reader,
mock GPIO pins, local broker) written into the demo's state folder together
with the keys it names: the fleet's credential key and the facility's code
key, derived from the demo's code master key (central's
``reservations.code_key_file``) as provisioning derives it, and the public
half of the demo's command key (central's ``commands.signing_key_file``).

Product code never loads this: every device command needs ``--config``. The
demo, and tests that want "the demo device", write it with
:func:`write_demo_config` and load the written file like any other.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from cardreader.credential import load_key, write_new_key
from contracts.reservations_hash import facility_code_key

KEY_FILE = "credential.key"
CODE_MASTER_FILE = "code-master.key"
CODE_KEY_FILE = "code.key"
COMMAND_KEY_FILE = "command.key"
COMMAND_PUBLIC_FILE = "command.pub"


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


def ensure_code_master(state: Path) -> Path:
    """The demo fleet's code master key, central's ``reservations.code_key_file``."""
    path = state / CODE_MASTER_FILE
    if not path.exists():
        write_new_key(path)
    return path


def ensure_command_key(state: Path) -> Path:
    """The demo's command signing key (central's ``commands.signing_key_file``,
    created once, 0600) and its public half beside it (the device's)."""
    path = state / COMMAND_KEY_FILE
    if not path.exists():
        state.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
    key = load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey), path
    public = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    (state / COMMAND_PUBLIC_FILE).write_bytes(public)
    return path


def write_demo_config(state: Path, text: str | None = None) -> Path:
    """Write ``state/device.toml`` (the demo configuration, or ``text``) and
    the key files it names; returns the configuration's path."""
    state.mkdir(parents=True, exist_ok=True)
    ensure_key(state)
    ensure_command_key(state)
    text = demo_config_text() if text is None else text
    facility = tomllib.loads(text).get("device", {}).get("facility")
    if isinstance(facility, str) and facility:
        master = load_key(ensure_code_master(state))
        code_key = state / CODE_KEY_FILE
        code_key.write_text(facility_code_key(master, facility).hex() + "\n")
        code_key.chmod(0o600)
    path = state / "device.toml"
    path.write_text(text, encoding="utf-8")
    return path
