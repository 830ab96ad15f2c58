"""A stand-in for ``deploy/install-device`` in the Ansible tests, with its
command line and the release layout it leaves under ``--root``:

    ROOT/opt/city-kiosk/releases/NAME/venv/bin/python   (runs this checkout)
    ROOT/opt/city-kiosk/current  -> releases/NAME        (the new release)
    ROOT/opt/city-kiosk/previous -> the release that was current
    ROOT/etc/city-kiosk/         the bundle's files

The real installer (branch ``provision``) also builds the virtual
environment, users and units; this one only makes the layout, so the
playbook's install, gate and rollback logic runs in seconds. Each call is
logged to ``ROOT/installer-calls.jsonl``.

Run: ``python -m tests.harness.fake_installer BUNDLE --root R --release NAME ...``
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path

from deploy.release import COMPLETE

CHECKOUT = Path(__file__).resolve().parents[2]
PREFIX = "opt/city-kiosk"


def script_text() -> str:
    """An executable ``install-device`` that runs this module with this interpreter."""
    return (
        "#!/bin/sh\n"
        f'PYTHONPATH={CHECKOUT} exec {sys.executable} -m tests.harness.fake_installer "$@"\n'
    )


def switch(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` atomically (a new link renamed over the old one)."""
    temporary = link.with_name(link.name + ".new")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(target)
    temporary.replace(link)


def install(bundle: Path, root: Path, release: str) -> None:
    prefix = root / PREFIX
    venv_bin = prefix / "releases" / release / "venv" / "bin"
    venv_bin.mkdir(parents=True, exist_ok=True)
    python = venv_bin / "python"
    python.write_text(f'#!/bin/sh\nPYTHONPATH={CHECKOUT} exec {sys.executable} "$@"\n')
    python.chmod(0o755)
    # As the real installer: a release is complete once it passed its checks.
    (venv_bin.parent.parent / COMPLETE).write_text("")
    etc = root / "etc" / "city-kiosk"
    etc.mkdir(parents=True, exist_ok=True)
    with tarfile.open(bundle) as archive:
        archive.extractall(etc, filter="data")
    current = prefix / "current"
    if current.is_symlink() and str(current.readlink()) != f"releases/{release}":
        switch(prefix / "previous", str(current.readlink()))
    switch(current, f"releases/{release}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="install-device (test stand-in)")
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--root", type=Path, default=Path("/"))
    parser.add_argument("--release", required=True)
    parser.add_argument("--skip-apt", action="store_true")
    parser.add_argument("--wheelhouse", type=Path)
    parser.add_argument("--ca-fingerprint", default="")
    args = parser.parse_args(argv)
    if args.root == Path("/"):
        print("the test installer only installs into a throwaway --root", file=sys.stderr)
        return 2
    install(args.bundle, args.root, args.release)
    with (args.root / "installer-calls.jsonl").open("a") as log:
        call = {"release": args.release, "skip_apt": args.skip_apt,
                "ca_fingerprint": args.ca_fingerprint}  # fmt: skip
        log.write(json.dumps(call) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
