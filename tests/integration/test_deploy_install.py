"""The on-device installer run for real against a throwaway root
(tests/harness/install_root.py): layout, accounts, units that pass
``systemd-analyze verify``, idempotence, every refusal leaving the previous
install in place, and rollback."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy import bundle, pki
from deploy.fleet import load_fleet
from deploy.install import POLKIT_FILES, POLKIT_RULE, UNITS
from tests.harness.install_root import dependency_farm, fresh_root, project_wheel

SOURCE = Path(__file__).resolve().parents[2]
BASE_PYTHON = Path(getattr(sys, "_base_executable", sys.executable)).resolve()


@pytest.fixture(scope="session")
def offline_packages(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(wheelhouse with the project's wheel, dependency farm) built once."""
    base = tmp_path_factory.mktemp("install-packages")
    project_wheel(SOURCE, base / "wheelhouse")
    return base / "wheelhouse", dependency_farm(base / "farm")


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("install-fleet") / "fleet"
    run_deploy("fleet", "init", str(root))
    for device, role, doors in (
        ("gym-door-1", "door", ["--doors", "room-a:17:27:22"]),
        ("gym-door-2", "door", ["--doors", "room-b:5"]),
        (
            "hall-counter-1",
            "counter",
            ["--payment-backend", "sim", "--printer-backend", "cups", "--cups-queue", "kiosk"],
        ),
    ):
        run_deploy(
            "provision",
            "--fleet",
            str(root),
            "--id",
            device,
            "--facility",
            "gym",
            "--role",
            role,
            *doors,
        )
    return root


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    yield fresh_root(tmp_path / "root", BASE_PYTHON)


def run_deploy(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "deploy", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=SOURCE,
        env=env,
    )
    if args[0] in ("fleet", "provision"):
        assert done.returncode == 0, done.stderr
    return done


def installer(
    root: Path, bundle_path: Path, offline: tuple[Path, Path], *args: str, wheelhouse: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(offline[1])}
    extra = ["--wheelhouse", str(offline[0])] if wheelhouse else []
    return run_deploy("install", str(bundle_path), "--root", str(root), *extra, *args, env=env)


def archive(fleet: Path, device: str) -> Path:
    return fleet / "bundles" / f"{device}.tar.gz"


def verify_units(root: Path) -> None:
    for unit in UNITS:
        done = subprocess.run(
            [
                "systemd-analyze",
                "verify",
                f"--root={root}",
                "--man=no",
                f"/etc/systemd/system/{unit}",
            ],
            check=False,
            capture_output=True,
            text=True,
        )
        assert (done.returncode, done.stdout + done.stderr) == (0, ""), unit


def secret_readers(root: Path) -> dict[str, set[str]]:
    """Members of the groups that guard a key, the doors or the store (primary
    group included)."""
    passwd = [line.split(":") for line in (root / "etc/passwd").read_text().splitlines()]
    readers = {}
    for line in (root / "etc/group").read_text().splitlines():
        name, _, gid, members = line.split(":")
        if name in ("kiosk", "city-kiosk", "city-kiosk-devkey", "city-kiosk-cardkey", "gpio"):
            primary = {user[0] for user in passwd if user[3] == gid}
            readers[name] = primary | set(filter(None, members.split(",")))
    return readers


def unit_user(root: Path, unit: str) -> str:
    text = (root / "etc/systemd/system" / unit).read_text()
    return next(line.split("=", 1)[1] for line in text.splitlines() if line.startswith("User="))


def snapshot(root: Path) -> dict[str, bytes | str]:
    """What must not change when an install is refused."""
    opt = root / "opt/city-kiosk"
    state: dict[str, bytes | str] = {
        "current": str((opt / "current").readlink()),
        "releases": ",".join(sorted(p.name for p in (opt / "releases").iterdir())),
    }
    for path in sorted((root / "etc/city-kiosk").rglob("*")):
        if path.is_file():
            state[str(path)] = path.read_bytes()
    return state


def test_install_door_device_into_fresh_root(
    root: Path, fleet: Path, offline_packages: tuple[Path, Path]
) -> None:
    done = installer(root, archive(fleet, "gym-door-1"), offline_packages, "--release", "r1")
    assert done.returncode == 0, done.stderr
    assert "packages resolve (simulated" in done.stdout
    opt = root / "opt/city-kiosk"
    assert (opt / "current").readlink() == Path("releases/r1")
    assert (opt / "releases/r1/.complete").exists()
    assert (
        opt / "releases/r1/venv/lib/python3.11/site-packages/city_kiosk-0.1.0.dist-info"
    ).is_dir()
    etc = root / "etc/city-kiosk"
    assert (etc / "device.toml").read_bytes() == bundle.read_bundle(
        archive(fleet, "gym-door-1")
    ).files[bundle.CONFIG]
    gids = {line.split(":")[0]: int(line.split(":")[2])
            for line in (root / "etc/group").read_text().splitlines()}  # fmt: skip
    for secret, group_name in (("tls/device.key", "city-kiosk-devkey"),
                               ("credential.key", "city-kiosk-cardkey"),
                               ("code.key", "city-kiosk-cardkey"),
                               ("device.toml", "city-kiosk")):  # fmt: skip
        info = (etc / secret).stat()
        assert (info.st_mode & 0o777, info.st_uid, info.st_gid) == (0o640, 0, gids[group_name])
    assert (etc / "tls/ca.pem").stat().st_gid == 0
    store = (root / "var/lib/city-kiosk").stat()
    assert (store.st_mode & 0o7777, store.st_gid) == (0o2770, gids["city-kiosk"])
    passwd = (root / "etc/passwd").read_text()
    assert all(f"\n{user}:" in passwd for user in ("kiosk", "lockctl", "city-kiosk-sync"))
    # Who may read which key, and reach the unlock socket (group kiosk): exactly these.
    assert secret_readers(root) == {
        "kiosk": {"kiosk", "lockctl"},
        "city-kiosk": {"kiosk", "lockctl", "city-kiosk-sync"},
        "city-kiosk-devkey": {"kiosk", "city-kiosk-sync"},
        "city-kiosk-cardkey": {"kiosk"},
        "gpio": {"lockctl"},
    }
    assert unit_user(root, "city-kiosk-sync.service") == "city-kiosk-sync"
    assert unit_user(root, "city-kiosk-lockctl.service") == "lockctl"
    wants = root / "etc/systemd/system/multi-user.target.wants"
    assert {p.name for p in wants.iterdir()} == set(UNITS)
    kiosk_unit = (root / "etc/systemd/system/city-kiosk-kiosk.service").read_text()
    assert "--headless" in kiosk_unit
    assert (
        "RuntimeWatchdogSec="
        in (root / "etc/systemd/system.conf.d/city-kiosk-watchdog.conf").read_text()
    )
    assert "SystemMaxUse=" in (root / "etc/systemd/journald.conf.d/city-kiosk.conf").read_text()
    assert "consoleblank=0" in (root / "boot/firmware/cmdline.txt").read_text()
    # Remote commands: central's public key for every service, and the polkit
    # rule that lets the sync agent restart its units and reboot.
    command_pub = (etc / "command.pub").stat()
    assert (command_pub.st_mode & 0o777, command_pub.st_uid, command_pub.st_gid) == (0o644, 0, 0)
    rule = root / "etc/polkit-1/rules.d" / POLKIT_RULE
    assert rule.read_bytes() == (POLKIT_FILES / POLKIT_RULE).read_bytes()
    assert rule.stat().st_mode & 0o777 == 0o644
    verify_units(root)
    # Re-running is safe: same release, no rebuild, nothing rewritten.
    before = snapshot(root)
    again = installer(
        root, archive(fleet, "gym-door-1"), offline_packages, "--release", "r1", "--skip-apt"
    )
    assert again.returncode == 0, again.stderr
    assert "already built" in again.stdout and "files: 0 changed" in again.stdout
    assert snapshot(root) == before


def test_install_counter_then_update_and_rollback(
    root: Path, fleet: Path, offline_packages: tuple[Path, Path]
) -> None:
    counter = archive(fleet, "hall-counter-1")
    assert (
        installer(root, counter, offline_packages, "--release", "r1", "--skip-apt").returncode == 0
    )
    unit = (root / "etc/systemd/system/city-kiosk-kiosk.service").read_text()
    assert "SDL_VIDEODRIVER=kmsdrm" in unit and "EnvironmentFile=/etc/city-kiosk/kivy.env" in unit
    kivy_env = (root / "etc/city-kiosk/kivy.env").read_text()
    assert "KCFG_KIVY_EXIT_ON_ESCAPE=0" in kivy_env and "KCFG_GRAPHICS_FULLSCREEN=auto" in kivy_env
    verify_units(root)
    # The cage variant: cage itself is only simulated by apt here, so stand it in.
    cage = root / "usr/bin/cage"
    cage.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(BASE_PYTHON, cage)
    shutil.copy2("/usr/bin/env", root / "usr/bin/env")
    done = installer(
        root, counter, offline_packages, "--release", "r2", "--display", "cage", "--skip-apt"
    )
    assert done.returncode == 0, done.stderr
    assert (
        " /usr/bin/cage -- " in (root / "etc/systemd/system/city-kiosk-kiosk.service").read_text()
    )
    verify_units(root)
    opt = root / "opt/city-kiosk"
    assert ((opt / "current").readlink(), (opt / "previous").readlink()) == (
        Path("releases/r2"),
        Path("releases/r1"),
    )
    back = run_deploy("rollback", "--root", str(root))
    assert back.returncode == 0, back.stderr
    assert "units not restarted" in back.stdout
    assert ((opt / "current").readlink(), (opt / "previous").readlink()) == (
        Path("releases/r1"),
        Path("releases/r2"),
    )
    # A third release prunes the one that is neither current nor previous.
    assert (
        installer(root, counter, offline_packages, "--release", "r3", "--skip-apt").returncode == 0
    )
    assert sorted(p.name for p in (opt / "releases").iterdir()) == ["r1", "r3"]


def test_install_rollback_without_previous_is_refused(
    root: Path, fleet: Path, offline_packages: tuple[Path, Path]
) -> None:
    assert run_deploy("rollback", "--root", str(root)).returncode == 8
    assert (
        installer(
            root, archive(fleet, "gym-door-1"), offline_packages, "--release", "r1", "--skip-apt"
        ).returncode
        == 0
    )
    done = run_deploy("rollback", "--root", str(root))
    assert done.returncode == 8 and "nothing to roll back to" in done.stderr


def _expired_bundle(fleet: Path, tmp_path: Path) -> Path:
    ca = load_fleet(fleet).ca()
    files = dict(bundle.read_bundle(archive(fleet, "gym-door-1")).files)
    old = pki.issue(
        ca, "gym-door-1", not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=10), days=1
    )
    from cryptography.hazmat.primitives import serialization

    files[bundle.CERT] = old.cert.public_bytes(serialization.Encoding.PEM)
    files[bundle.KEY] = old.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    content = {name: files[name] for name in bundle.CONTENT_FILES}
    manifest = bundle.make_manifest(
        content,
        facility="gym",
        role="door",
        broker=("localhost", 8883),
        created="2020-01-01T00:00:00+00:00",
    )
    path = tmp_path / "expired.tar.gz"
    bundle.write_archive(path, "gym-door-1", bundle.signed_files(content, manifest, ca.key), 0)
    return path


def _tampered_bundle(fleet: Path, tmp_path: Path) -> Path:
    files = dict(bundle.read_bundle(archive(fleet, "gym-door-1")).files)
    files[bundle.CONFIG] = files[bundle.CONFIG].replace(b"relay_pin = 17", b"relay_pin = 4")
    path = tmp_path / "tampered.tar.gz"
    bundle.write_archive(path, "gym-door-1", files, 0)
    return path


def test_install_refusals_leave_the_previous_install(
    root: Path, fleet: Path, offline_packages: tuple[Path, Path], tmp_path: Path
) -> None:
    own = archive(fleet, "gym-door-1")
    assert installer(root, own, offline_packages, "--release", "r1", "--skip-apt").returncode == 0
    before = snapshot(root)
    unreachable = {
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "PIP_EXTRA_INDEX_URL": "",
        "PIP_FIND_LINKS": "",
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_RETRIES": "0",
    }
    cases = [
        (
            "other device",
            [str(archive(fleet, "gym-door-2")), "--skip-apt"],
            {},
            4,
            "bundle is for device 'gym-door-2'",
        ),
        (
            "tampered",
            [str(_tampered_bundle(fleet, tmp_path)), "--skip-apt"],
            {},
            3,
            "device.toml was changed",
        ),
        ("expired", [str(_expired_bundle(fleet, tmp_path)), "--skip-apt"], {}, 3, "expired on"),
        (
            "apt source",
            [str(own), "--extra-packages", "city-kiosk-no-such-package"],
            {},
            5,
            "apt cannot find the Debian package(s) city-kiosk-no-such-package",
        ),
        (
            "no network",
            [str(own), "--skip-apt", "--no-wheelhouse"],
            unreachable,
            6,
            "--wheelhouse DIR",
        ),
        (
            "vpcd",
            [str(own), "--extra-packages", "vsmartcard-vpcd"],
            {},
            5,
            "refusing to install vsmartcard-vpcd",
        ),
    ]
    for what, case_args, env_extra, code, message in cases:
        use_wheelhouse = "--no-wheelhouse" not in case_args
        args = [a for a in case_args if a != "--no-wheelhouse"]
        env = {**os.environ, "PYTHONPATH": str(offline_packages[1]), **env_extra}
        wheel = ["--wheelhouse", str(offline_packages[0])] if use_wheelhouse else []
        done = run_deploy(
            "install", args[0], "--root", str(root), "--release", "r2", *wheel, *args[1:], env=env
        )
        assert done.returncode == code, (what, done.stdout, done.stderr)
        errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and message in errors[0], what
        assert json.loads(done.stderr.splitlines()[0])["msg"] == "install failed", what
        assert snapshot(root) == before, what
    _planted_links_are_refused(root, own, offline_packages, before)
    # An upgrade from the store in group kiosk: its files move to city-kiosk,
    # a link planted among them is neither followed nor changed.
    store, kiosk_gid = root / "var/lib/city-kiosk", grp_id(root, "kiosk")
    (store / "device.db").write_bytes(b"")
    os.chown(store / "device.db", 0, kiosk_gid)
    outside = root.parent / "outside-file"
    outside.write_bytes(b"not the installer's")
    os.chown(outside, 0, kiosk_gid)
    (store / "device.db-wal").symlink_to(outside)
    replaced = installer(
        root,
        archive(fleet, "gym-door-2"),
        offline_packages,
        "--release",
        "r1",
        "--skip-apt",
        "--replace",
    )
    assert replaced.returncode == 0, replaced.stderr
    assert (store / "device.db").stat().st_gid == grp_id(root, "city-kiosk")
    assert (outside.stat().st_gid, outside.stat().st_mode & 0o777) == (kiosk_gid, 0o644)
    assert b'id = "gym-door-2"' in (root / "etc/city-kiosk/device.toml").read_bytes()


def grp_id(root: Path, name: str) -> int:
    lines = (root / "etc/group").read_text().splitlines()
    return next(int(line.split(":")[2]) for line in lines if line.startswith(f"{name}:"))


def _planted_links_are_refused(
    root: Path, own: Path, offline: tuple[Path, Path], before: dict[str, bytes | str]
) -> None:
    """The attack: a device user (the store is group-writable, the kiosk owns
    its Kivy home) swaps a folder the installer chowns for a link to /etc."""
    victim = root.parent / "victim-etc"  # stands for /etc
    victim.mkdir(mode=0o755)
    (victim / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    for planted in ("var/lib/city-kiosk/kivy", "var/lib/city-kiosk/voice-cache"):
        shutil.rmtree(root / planted)
        (root / planted).symlink_to(victim)
        done = installer(root, own, offline, "--release", "r2", "--skip-apt")
        assert done.returncode == 9, (planted, done.stdout, done.stderr)
        assert f"refusing to follow the symbolic link /{planted}" in done.stderr
        assert snapshot(root) == before, planted
        for path in (victim, victim / "shadow"):
            info = path.lstat()
            assert (info.st_uid, info.st_gid) == (0, 0), path
        assert victim.stat().st_mode & 0o777 == 0o755
        assert not (root / "opt/city-kiosk/releases/r2").exists()
        (root / planted).unlink()
        (root / planted).mkdir()


def test_install_check_only_on_debian_python_changes_nothing(
    root: Path, fleet: Path, tmp_path: Path
) -> None:
    """The shell entry with Debian's python3 (python3-cryptography 38): the bundle
    checks run before any venv exists."""
    python = Path("/usr/bin/python3")
    assert python.exists(), "Debian's python3 is part of the supported platform"
    before = sorted(str(p) for p in root.rglob("*"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHON": str(python)}

    def check_only(bundle: Path) -> subprocess.CompletedProcess[str]:
        argv = [str(SOURCE / "deploy/install-device"), str(bundle), "--root", str(root),
                "--check-only", "--skip-apt"]  # fmt: skip
        return subprocess.run(argv, check=False, capture_output=True, text=True, env=env)

    done = check_only(archive(fleet, "hall-counter-1"))
    assert done.returncode == 0, done.stderr
    assert "bundle ok: device hall-counter-1 (counter)" in done.stdout
    assert "nothing was changed" in done.stdout
    assert sorted(str(p) for p in root.rglob("*")) == before
    tampered = _tampered_bundle(fleet, tmp_path)
    refused = check_only(tampered)
    assert refused.returncode == 3 and "sha256 mismatch" in refused.stderr
