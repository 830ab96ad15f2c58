"""The rollout playbook with the real on-device installer: signed bundles from
``python -m deploy provision``, the project source unpacked by the role,
``deploy/install-device`` building a release venv into a throwaway root
(``fresh_root``), central's real API as the health gate. A device that
reports healthy stays on the new release; one that never does is rolled back
by ``python -m deploy rollback`` of the previous release.

Release venvs get their dependencies lent through ``PYTHONPATH`` (see
tests/harness/install_root.py), so an install takes seconds and no network.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.central_api import CentralApi
from tests.harness.install_root import dependency_farm, fresh_root, project_wheel
from tests.integration.test_deploy_ansible import ANSIBLE, BIN, Fleet, HealthyDevice

SOURCE = Path(__file__).resolve().parents[2]
BASE_PYTHON = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
DEVICE = "dev-a"


def source_archive(path: Path) -> Path:
    """The project source as the role unpacks it (what a release ships)."""
    with tarfile.open(path, "w:gz") as archive:
        for name in ("pyproject.toml", "README.md", "deploy", "sync", "cardreader", "central",
                     "kiosk", "lockctl"):  # fmt: skip
            archive.add(SOURCE / name, name, filter=_no_caches)
    return path


def _no_caches(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if "__pycache__" in info.name else info


@pytest.fixture
def real_fleet(tmp_path: Path) -> Iterator[tuple[Fleet, Path, Path]]:
    fleet_dir = tmp_path / "fleet"
    deploy = [sys.executable, "-m", "deploy"]
    for argv in (
        ["fleet", "init", str(fleet_dir), "--broker-host", "localhost"],
        ["provision", "--fleet", str(fleet_dir), "--id", DEVICE, "--facility", "fac-1",
         "--role", "door", "--doors", "room-a:17:27:22"],
    ):  # fmt: skip
        done = subprocess.run([*deploy, *argv], cwd=SOURCE, capture_output=True, text=True,
                              check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
    wheelhouse = tmp_path / "wheelhouse"
    project_wheel(SOURCE, wheelhouse)
    farm = dependency_farm(tmp_path / "farm")
    central = CentralApi(tmp_path / "central.db").start()
    fleet = Fleet(tmp_path, fleet_dir, source_archive(tmp_path / "city-kiosk.tar.gz"), central)
    fresh_root(fleet.root(DEVICE), BASE_PYTHON)
    try:
        yield fleet, wheelhouse, farm
    finally:
        central.stop()


def forged_bundle(folder: Path) -> Path:
    """A bundle for the same device from a forger's own fleet CA."""
    for argv in (
        ["fleet", "init", str(folder), "--broker-host", "localhost"],
        ["provision", "--fleet", str(folder), "--id", DEVICE, "--facility", "fac-1",
         "--role", "door", "--doors", "room-a:17:27:22"],
    ):  # fmt: skip
        done = subprocess.run([sys.executable, "-m", "deploy", *argv], cwd=SOURCE,
                              capture_output=True, text=True, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
    return folder / "bundles" / f"{DEVICE}.tar.gz"


def rollout(fleet: Fleet, wheelhouse: Path, farm: Path, release: str
            ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    groups = fleet.device_groups(DEVICE)
    groups["role_door"]["vars"]["city_kiosk_doors"] = ["room-a:17:27:22"]
    inventory = fleet.inventory(groups, city_kiosk_wheelhouse=str(wheelhouse))
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
        "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"),
        "ANSIBLE_HOME": str(fleet.folder / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(fleet.folder / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        # install-device runs the installer with this interpreter, which
        # lends the release venv its dependencies (no network in tests).
        "PYTHON": sys.executable,
        "PYTHONPATH": f"{SOURCE}:{farm}",
    }
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory), "rollout.yml",
         "-e", f"city_kiosk_release={release}"],
        cwd=ANSIBLE, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


class HealthyOnceInstalled(HealthyDevice):
    """Reports healthy once the release is active; before the first install
    there is no ``current`` link yet."""

    def _run(self, fleet: Fleet, host: str, release: str) -> None:
        link = fleet.root(host) / "opt" / "city-kiosk" / "current"
        while not self.stop.wait(0.3):
            if link.is_symlink() and str(link.readlink()) == f"releases/{release}":
                fleet.central.report(host)


def test_rollout_with_real_installer_updates_then_rolls_back(
    real_fleet: tuple[Fleet, Path, Path],
) -> None:
    fleet, wheelhouse, farm = real_fleet
    fleet.central.report(DEVICE)
    root = fleet.root(DEVICE)
    # The attack: the device's bundle swapped for one signed by another CA
    # (consistent, signed, but not the fleet's). A new device has no CA yet,
    # so only the pinned fingerprint stands between it and the forgery.
    genuine = fleet.fleet / "bundles" / f"{DEVICE}.tar.gz"
    kept = genuine.with_name("genuine.tar.gz")
    genuine.rename(kept)
    forged_bundle(fleet.folder / "forger").rename(genuine)
    forged = rollout(fleet, wheelhouse, farm, "r1")
    output = forged.stdout + forged.stderr
    assert forged.returncode != 0, output[-3000:]
    assert "the fleet CA is not the expected one (fingerprint mismatch)" in output
    assert "did not install the release" in output
    assert not (root / "opt/city-kiosk/current").is_symlink()
    assert not (root / "etc/city-kiosk").exists()
    assert not list(root.rglob("bundle.tar.gz"))  # the staging folder is gone too
    kept.rename(genuine)

    with HealthyOnceInstalled(fleet, DEVICE, "r1"):
        first = rollout(fleet, wheelhouse, farm, "r1")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    assert not list(root.rglob("bundle.tar.gz"))
    assert fleet.link(DEVICE) == "releases/r1"
    assert (root / "opt/city-kiosk/releases/r1/.complete").exists()
    assert (root / "etc/city-kiosk/device.toml").exists()
    assert (root / "etc/systemd/system/city-kiosk-lockctl.service").exists()

    # r2 never reports healthy: back on r1 by the previous release's rollback.
    failed = rollout(fleet, wheelhouse, farm, "r2")
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0, output
    assert (root / "opt/city-kiosk/releases/r2/.complete").exists()  # it was installed
    assert fleet.link(DEVICE) == "releases/r1", output[-3000:]
    assert fleet.link(DEVICE, "previous") == "releases/r2"
    assert "Roll back with python -m deploy rollback" in output
