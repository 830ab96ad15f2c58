"""Versioned releases under ``/opt/city-kiosk``: one virtual environment each.

    /opt/city-kiosk/releases/<name>/venv    the project installed into its own venv
    /opt/city-kiosk/releases/<name>/.complete  written once the release passed its checks
    /opt/city-kiosk/current  -> releases/<name>   what the units run
    /opt/city-kiosk/previous -> releases/<name>   the one before (rollback target)

A release is built beside the running one; the symlinks are switched last and
atomically (a new symlink renamed over the old one), so a failed build never
touches what runs. The release name defaults to the project version plus a
short hash of the source tree, so installing the same source twice is a no-op.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

from deploy.errors import InstallError
from deploy.host import Target, run

OPT = "/opt/city-kiosk"
COMPLETE = ".complete"
PACKAGES = ("cardreader", "central", "deploy", "kiosk", "lockctl", "sync")
EXIT_PYTHON_PACKAGES, EXIT_RELEASE_BROKEN, EXIT_NO_PREVIOUS = 6, 7, 8
NETWORK_SIGNS = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "No matching distribution found",
    "Could not find a version that satisfies",
)


def source_version(source: Path) -> str:
    with (source / "pyproject.toml").open("rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def source_digest(source: Path) -> str:
    """SHA-256 over pyproject.toml and every package file (no caches)."""
    digest = hashlib.sha256()
    files = [source / "pyproject.toml"]
    for package in PACKAGES:
        files += [
            p
            for p in (source / package).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        ]
    for path in sorted(files):
        digest.update(path.relative_to(source).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def default_release_name(source: Path) -> str:
    return f"{source_version(source)}-{source_digest(source)[:10]}"


@dataclass(frozen=True)
class Layout:
    target: Target

    @property
    def opt(self) -> Path:
        return self.target.path(OPT)

    @property
    def releases(self) -> Path:
        return self.opt / "releases"

    @property
    def current(self) -> Path:
        return self.opt / "current"

    @property
    def previous(self) -> Path:
        return self.opt / "previous"

    def release(self, name: str) -> Path:
        return self.releases / name

    def python(self, name: str) -> Path:
        return self.release(name) / "venv" / "bin" / "python"

    def complete(self, name: str) -> bool:
        return (self.release(name) / COMPLETE).exists()

    def active(self) -> str | None:
        return _link_name(self.current)

    def before(self) -> str | None:
        return _link_name(self.previous)


def _link_name(link: Path) -> str | None:
    return link.readlink().name if link.is_symlink() else None


def build_release(
    layout: Layout,
    name: str,
    *,
    source: Path,
    python: str,
    wheelhouse: Path | None,
    system_site_packages: bool,
) -> bool:
    """Create the release's venv and install the project; False if it exists already."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,80}", name):
        raise InstallError(f"release name {name!r}: letters, digits, '.', '_', '+', '-'", 2)
    folder = layout.release(name)
    if layout.complete(name):
        return False
    if folder.exists():
        shutil.rmtree(folder)  # an earlier attempt that never completed
    folder.mkdir(parents=True)
    try:
        _create_venv(folder / "venv", python, system_site_packages)
        _pip_install(layout.python(name), source, wheelhouse)
    except InstallError:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    (folder / "release.json").write_text(
        json.dumps(
            {
                "name": name,
                "version": source_version(source),
                "source_sha256": source_digest(source),
                "built": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            },
            indent=2,
        )
        + "\n"
    )
    return True


def _create_venv(venv: Path, python: str, system_site_packages: bool) -> None:
    flags = ["--system-site-packages"] if system_site_packages else []
    done = run([python, "-m", "venv", *flags, str(venv)])
    if done.returncode != 0:
        raise InstallError(
            f"creating the virtual environment failed (is python3-venv installed?): "
            f"{done.stderr.strip().splitlines()[-1:] or 'no output'}",
            1,
        )


def _pip_install(venv_python: Path, source: Path, wheelhouse: Path | None) -> None:
    command = [
        str(venv_python),
        "-m",
        "pip",
        "install",
        "--no-input",
        "--disable-pip-version-check",
    ]
    wanted: str = str(source)
    if wheelhouse is not None:
        if not wheelhouse.is_dir():
            raise InstallError(f"wheelhouse {wheelhouse} is not a folder", 2)
        command += ["--no-index", "--find-links", str(wheelhouse)]
        version = source_version(source)
        built = sorted(wheelhouse.glob(f"city_kiosk-{version}-*.whl"))
        wanted = str(built[-1]) if built else wanted
    # pip runs in the venv's folder so nothing in the current folder (a source
    # checkout with its egg-info) looks installed already.
    done = run([*command, wanted], cwd=venv_python.parent.parent)
    if done.returncode == 0:
        return
    output = done.stderr + done.stdout
    last = [line for line in output.splitlines() if line.strip()][-1:] or ["no output"]
    if any(sign in output for sign in NETWORK_SIGNS):
        where = (
            f"the wheelhouse {wheelhouse} lacks a package"
            if wheelhouse
            else "pip cannot reach the package index (no network?)"
        )
        raise InstallError(
            f"installing the Python packages failed: {where} ({last[0].strip()}); for an"
            " offline install pass --wheelhouse DIR made with 'pip wheel -w DIR SOURCE'"
            " on a machine of the same architecture",
            EXIT_PYTHON_PACKAGES,
        )
    raise InstallError(f"pip install failed: {last[0].strip()}", EXIT_PYTHON_PACKAGES)


def self_check(layout: Layout, name: str, config: Path) -> None:
    """The new release loads the new configuration and imports its services."""
    python = str(layout.python(name))
    checks = (
        [python, "-m", "sync", "config", "--config", str(config)],
        [python, "-c", "import lockctl.daemon, kiosk.cli, sync.agent, deploy.bundle"],
    )
    for command in checks:
        # Run from the release folder: python -m puts the current folder first on sys.path.
        done = run(command, cwd=layout.release(name))
        if done.returncode != 0:
            problem = (done.stderr or done.stdout).strip() or f"exit {done.returncode}"
            raise InstallError(
                f"release {name} failed its self-check ({' '.join(command[1:3])}): {problem}",
                EXIT_RELEASE_BROKEN,
            )


def mark_complete(layout: Layout, name: str) -> None:
    (layout.release(name) / COMPLETE).write_text(dt.datetime.now(dt.UTC).isoformat() + "\n")


def _point(link: Path, name: str) -> None:
    """Make ``link`` point at releases/<name>, atomically (rename over the old link)."""
    tmp = link.with_name(f".{link.name}.new")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(Path("releases") / name)
    tmp.replace(link)


def switch(layout: Layout, name: str) -> bool:
    """Make ``name`` current (the old current becomes previous); False if it was already."""
    active = layout.active()
    if active == name:
        return False
    if active is not None:
        _point(layout.previous, active)
    _point(layout.current, name)
    return True


def rollback(layout: Layout) -> tuple[str, str]:
    """Swap current and previous; returns (from, to)."""
    active, before = layout.active(), layout.before()
    if before is None or not layout.complete(before):
        raise InstallError(
            f"nothing to roll back to: {layout.previous} does not name a complete release",
            EXIT_NO_PREVIOUS,
        )
    _point(layout.current, before)
    if active is not None:
        _point(layout.previous, active)
    return active or "(none)", before


def prune(layout: Layout) -> list[str]:
    """Remove releases that are neither current nor previous (SD cards are small)."""
    keep = {layout.active(), layout.before()}
    removed = []
    for folder in sorted(layout.releases.iterdir()) if layout.releases.is_dir() else []:
        if folder.name not in keep:
            shutil.rmtree(folder)
            removed.append(folder.name)
    return removed
