"""A throwaway root file system for the installer, and a fast offline way to
give its release venvs their dependencies.

* :func:`fresh_root` is what a new Debian 12 / Raspberry Pi OS system looks
  like to the installer: passwd/group/shadow with root and the ``video``
  group, the Python interpreter, systemd's own units (copied from this machine, so
  ``systemd-analyze verify --root`` can resolve ``multi-user.target`` and
  friends) and a Raspberry Pi ``/boot/firmware/cmdline.txt``.
* :func:`project_wheel` zips the source tree into a wheel (pure Python, with
  the real ``Requires-Dist`` of pyproject.toml). The shared venv's setuptools
  is too old to build the project offline, and tests use no network.
* :func:`dependency_farm` is a folder of symlinks to the shared venv's
  installed distributions minus pip, setuptools and city-kiosk itself. Lent to
  the installer through ``PYTHONPATH``, pip sees every dependency as
  installed and only installs the project wheel into the new venv (seconds
  instead of a minute of Kivy and friends per release). The tradeoff: the
  release venv does not hold its own copies of the dependencies in tests;
  dependency resolution still runs against the pins.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import sysconfig
import tomllib
import zipfile
from pathlib import Path

DATA_SUFFIXES = (
    ".py",
    ".kv",
    ".toml",
    ".po",
    ".mo",
    ".html",
    ".j2",
    ".sql",
    ".service",
    ".conf",
    ".env",
)
NOT_LENT = ("pip", "setuptools", "_distutils_hack", "pkg_resources", "city_kiosk", "__editable__")
CMDLINE = "console=serial0,115200 console=tty1 root=PARTUUID=1234-02 rootfstype=ext4 rootwait\n"


def fresh_root(root: Path, interpreter: Path) -> Path:
    """A new root; ``interpreter`` (the venvs' base python) is copied to the same
    path inside it, as a device's /usr/bin/python3 is (systemd-analyze resolves
    ExecStart symlinks within the root)."""
    etc = root / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\nvideo:x:44:\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (etc / "gshadow").write_text("root:*::\nvideo:!::\n")
    for name in ("shadow", "gshadow"):
        (etc / name).chmod(0o640)
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    (root / "usr/sbin").mkdir(parents=True, exist_ok=True)
    nologin = root / "usr/sbin/nologin"
    nologin.write_text("#!/bin/sh\nexit 1\n")
    nologin.chmod(0o755)
    (root / "boot/firmware").mkdir(parents=True)
    (root / "boot/firmware/cmdline.txt").write_text(CMDLINE)
    inside = root / interpreter.relative_to("/")
    inside.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(interpreter, inside)
    return root


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"sha256={digest.decode()}"


def wheel_packages(source: Path) -> list[str]:
    """The top-level packages the real build puts in the wheel (pyproject's
    ``tool.setuptools.packages.find.include``), so this stand-in never drifts."""
    pyproject = tomllib.loads((source / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    return [pattern.rstrip("*") for pattern in patterns]


def project_wheel(source: Path, wheelhouse: Path) -> Path:
    """``city_kiosk-<version>-py3-none-any.whl`` from the source tree."""
    project = tomllib.loads((source / "pyproject.toml").read_text())["project"]
    version = project["version"]
    info = f"city_kiosk-{version}.dist-info"
    files: dict[str, bytes] = {}
    for package in wheel_packages(source):
        for path in sorted((source / package).rglob("*")):
            if (
                path.is_file()
                and "__pycache__" not in path.parts
                and (path.suffix in DATA_SUFFIXES)
            ):
                files[path.relative_to(source).as_posix()] = path.read_bytes()
    metadata = ["Metadata-Version: 2.1", "Name: city-kiosk", f"Version: {version}"]
    metadata += [f"Requires-Dist: {req}" for req in project["dependencies"]]
    files[f"{info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: tests.harness\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = [f"{name},{_record_hash(data)},{len(data)}" for name, data in files.items()]
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    wheelhouse.mkdir(parents=True, exist_ok=True)
    wheel = wheelhouse / f"city_kiosk-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


def dependency_farm(folder: Path) -> Path:
    """Symlinks to this venv's installed distributions, without pip/setuptools/us."""
    site = Path(sysconfig.get_paths()["purelib"])
    folder.mkdir(parents=True, exist_ok=True)
    for entry in site.iterdir():
        if entry.name.startswith(NOT_LENT) or entry.suffix == ".pth":
            continue
        (folder / entry.name).symlink_to(entry)
    return folder
