"""A small real filesystem for tests that fill the disk: a tmpfs mounted for
the test (root only; elsewhere the test is skipped with the reason)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest


def _cannot(reason: str) -> NoReturn:
    # Skipped on a developer's machine without root; never under CI, where
    # a silent skip would hide the disk-full tests.
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@contextmanager
def mounted_tmpfs(mount: Path, size: str = "16m") -> Iterator[Path]:
    """A tmpfs of ``size`` at ``mount`` (created), unmounted afterwards."""
    if os.geteuid() != 0:
        _cannot("mounting a small tmpfs needs root (these tests run as root in CI)")
    mount.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        _cannot(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> Path:
    """Write a file until the filesystem has not one byte left; returns it
    (delete it to free the space)."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for chunk in (1 << 20, 1 << 16, 4096, 512, 1):
            block = bytes(chunk)
            try:
                while True:
                    os.write(fd, block)
            except OSError:
                continue
    finally:
        os.close(fd)
    assert os.statvfs(folder).f_bavail == 0
    return filler
