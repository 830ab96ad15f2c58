"""``python -m deploy install BUNDLE``: the on-device installer.

Order (each step idempotent; nothing that runs is touched before the last step):

1. read and verify the bundle (hashes, CA signature, chain, expiry); refuse a
   bundle for another device or fleet than the one installed (``--replace``);
   refuse when a path it would change is a symbolic link (:mod:`deploy.nofollow`:
   every change is made through descriptors opened without following links);
2. Debian packages (``apt-get install``; simulated for a root other than /);
3. system groups and users (one per service; the groups guarding a key or the
   unlock socket get exactly their members);
4. build the release's venv beside the running one (skipped when complete),
   then its self-check with the *new* configuration;
5. configuration under /etc/city-kiosk, the store folder, systemd units and
   drop-ins (journald limits, hardware watchdog), the polkit rule that lets
   the sync agent restart the city-kiosk units and reboot (remote commands),
   console blanking off;
6. switch ``current`` (``previous`` keeps the old one), prune old releases,
   restart the units when systemd runs this system.

Exit codes: see :data:`EXIT_CODES` (and docs/provisioning.md).
"""

from __future__ import annotations

import errno
import fcntl
import os
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from deploy import bundle as bundles
from deploy import host, nofollow, release
from deploy.errors import BundleError, InstallError
from deploy.host import Target

SOURCE = Path(__file__).resolve().parent.parent
SYSTEMD_FILES = Path(__file__).resolve().parent / "systemd"
POLKIT_FILES = Path(__file__).resolve().parent / "polkit"
POLKIT_RULE = "50-city-kiosk-sync.rules"
POLKIT_RULE_PATH = f"/etc/polkit-1/rules.d/{POLKIT_RULE}"
ETC = "/etc/city-kiosk"
STORE = "/var/lib/city-kiosk"
UNIT_DIR = "/etc/systemd/system"
UNITS = ("city-kiosk-lockctl.service", "city-kiosk-sync.service", "city-kiosk-kiosk.service")
DISPLAYS = ("kmsdrm", "cage")
INSTALLED_MANIFEST = "bundle-manifest.json"
JOURNALD_DROP_IN = "/etc/systemd/journald.conf.d/city-kiosk.conf"
WATCHDOG_DROP_IN = "/etc/systemd/system.conf.d/city-kiosk-watchdog.conf"

EXIT_USAGE, EXIT_BUNDLE, EXIT_OTHER_DEVICE = 2, 3, 4
EXIT_CODES = {
    0: "installed, or already installed (nothing changed)",
    1: "a system command failed (useradd, venv, systemctl ...)",
    2: "usage error (bad option, not root)",
    3: "bundle refused: unreadable, tampered, expired or from another fleet",
    4: "bundle for another device than the one installed (use --replace)",
    5: "Debian packages unavailable (missing package source, apt failure)",
    6: "Python packages unavailable (no network: use --wheelhouse)",
    7: "the new release failed its self-check (config invalid for it)",
    8: "rollback impossible: no previous release",
    9: "refused: a path the installer changes is a symbolic link (planted?)",
}


@dataclass(frozen=True)
class InstallOptions:
    bundle: Path
    root: Path = Path("/")
    release: str | None = None
    skip_apt: bool = False
    wheelhouse: Path | None = None
    replace: bool = False
    check_only: bool = False
    display: str = "kmsdrm"
    ca_fingerprint: str | None = None
    extra_packages: tuple[str, ...] = ()
    system_site_packages: bool = False
    python: str = sys.executable
    source: Path = SOURCE


@dataclass
class InstallReport:
    device: str
    release: str
    steps: list[str] = field(default_factory=list)
    switched: bool = False
    restarted: bool = False


def _installed_file(target: Target, name: str) -> Path:
    return target.path(f"{ETC}/{name}")


def verified_bundle(options: InstallOptions, target: Target) -> bundles.Bundle:
    """The bundle, checked against itself and against what is installed."""
    try:
        bundle = bundles.read_bundle(options.bundle)
        manifest = bundles.verify_bundle(bundle, ca_fingerprint_pin=options.ca_fingerprint)
    except (BundleError, KeyError) as exc:
        raise InstallError(f"bundle refused: {exc}", EXIT_BUNDLE) from None
    installed_ca = _installed_file(target, bundles.CA)
    if (
        not options.replace
        and installed_ca.exists()
        and installed_ca.read_bytes() != bundle.files[bundles.CA]
    ):
        raise InstallError(
            f"bundle refused: it comes from another fleet CA than the installed {installed_ca}"
            " (--replace to move this device to the new fleet)",
            EXIT_BUNDLE,
        )
    installed = installed_device(target)
    if installed and installed != manifest.device and not options.replace:
        raise InstallError(
            f"this bundle is for device {manifest.device!r}, but this system is"
            f" {installed!r}: use that device's bundle, or --replace to re-purpose it",
            EXIT_OTHER_DEVICE,
        )
    return bundle


def installed_device(target: Target) -> str | None:
    """The device id of the installed configuration, if any."""
    config = _installed_file(target, bundles.CONFIG)
    if not config.exists():
        return None
    try:
        return str(tomllib.loads(config.read_text())["device"]["id"])
    except (tomllib.TOMLDecodeError, KeyError, TypeError, OSError):
        return None


@contextmanager
def _install_lock(target: Target) -> Iterator[None]:
    with nofollow.open_folder(target.root, release.OPT, create=0o755) as opt:
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            lock = os.open(".install.lock", flags, 0o600, dir_fd=opt)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise nofollow.PlantedLinkError(f"{release.OPT}/.install.lock") from None
            raise
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InstallError("another installer is running on this system", 1) from None
        yield
    finally:
        os.close(lock)


def install(options: InstallOptions, say: Callable[[str], None] = print) -> InstallReport:
    """Run the installer; raises :class:`InstallError` with the exit code on failure."""
    target = Target(options.root)
    if options.display not in DISPLAYS:
        raise InstallError(f"--display must be one of {', '.join(DISPLAYS)}", EXIT_USAGE)
    if (target.live or not options.check_only) and os.geteuid() != 0:
        raise InstallError("the installer must run as root (sudo)", EXIT_USAGE)
    bundle = verified_bundle(options, target)
    manifest = bundle.manifest
    name = options.release or release.default_release_name(options.source)
    report = InstallReport(manifest.device, name)
    step = report.steps.append
    say(
        f"bundle ok: device {manifest.device} ({manifest.role}), facility {manifest.facility},"
        f" certificate valid until {manifest.expires[:10]}"
    )
    packages = host.debian_packages(manifest.role, options.display, options.extra_packages)
    nofollow.refuse_links(target.root, _changed_paths(bundle))
    if options.check_only:
        if not options.skip_apt:
            step(host.ensure_packages(target, packages, simulate=True))
        step(f"would install release {name} into {target.root}")
        return report
    with _install_lock(target):
        if not options.skip_apt:
            step(host.ensure_packages(target, packages))
        step(f"accounts: {', '.join(host.ensure_accounts(target)) or 'present'}")
        layout = release.Layout(target)
        built = release.build_release(
            layout,
            name,
            source=options.source,
            python=options.python,
            wheelhouse=options.wheelhouse,
            system_site_packages=options.system_site_packages,
        )
        step(f"release {name}: {'built' if built else 'already built'}")
        with tempfile.TemporaryDirectory(prefix="city-kiosk-bundle-") as staged:
            _write_tree(Path(staged), bundle.files)
            release.self_check(layout, name, Path(staged) / bundles.CONFIG)
        release.mark_complete(layout, name)
        step(_install_configuration(target, bundle, manifest.role, options.display))
        step(host.disable_console_blanking(target))
        host.enable_units(target, UNITS)
        report.switched = release.switch(layout, name)
        removed = release.prune(layout)
        step(f"current -> {name}" + (f"; removed {', '.join(removed)}" if removed else ""))
        report.restarted = host.restart_units(target, UNITS)
    return report


def _write_tree(folder: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


class _Writer:
    """Writes into the target without following links (:mod:`deploy.nofollow`):
    only what differs in content, mode or owner; owners only when root."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.changed: list[str] = []
        self.root_user = os.geteuid() == 0

    def owner(self, user: str, group: str) -> nofollow.Owner | None:
        if not self.root_user:
            return None
        return nofollow.Owner(*host.account_ids(self.target, user, group))

    def folder(self, absolute: str, mode: int, owner: tuple[str, str] = ("root", "root")) -> None:
        if nofollow.ensure_folder(self.target.root, absolute, mode, self.owner(*owner)):
            self.changed.append(absolute + "/")

    def file(self, absolute: str, data: bytes, mode: int, group: str = "root") -> None:
        owner = self.owner("root", group)
        if nofollow.write_file(self.target.root, absolute, data, mode, owner):
            self.changed.append(absolute)


# Who may read each installed bundle file (docs/provisioning.md, "Users,
# groups and secrets"); the others are public (0644 root:root).
FILE_GROUPS = {
    bundles.CONFIG: host.CONFIG_GROUP,
    bundles.KEY: host.DEVICE_KEY_GROUP,
    bundles.CREDENTIAL_KEY: host.CARD_KEY_GROUP,
    bundles.CODE_KEY: host.CARD_KEY_GROUP,  # the kiosk hashes typed codes with it
}


def _changed_paths(bundle: bundles.Bundle) -> list[str]:
    """Every path the installer changes (checked for planted links up front)."""
    files = [f"{ETC}/{INSTALLED_MANIFEST if rel == bundles.MANIFEST else rel}"
             for rel in bundle.files if rel != bundles.SIGNATURE]  # fmt: skip
    files += [f"{ETC}/kivy.env", *(f"{UNIT_DIR}/{unit}" for unit in UNITS)]
    files += [JOURNALD_DROP_IN, WATCHDOG_DROP_IN, POLKIT_RULE_PATH, f"{release.OPT}/.install.lock"]
    # (current and previous are the installer's own links: renamed over, never followed.)
    folders = [f"{STORE}/kivy", f"{STORE}/voice-cache", f"{release.OPT}/releases"]
    return [*files, *folders, *host.CMDLINE_FILES, host.GRUB_DROP_IN]


def _install_configuration(target: Target, bundle: bundles.Bundle, role: str, display: str) -> str:
    write = _Writer(target)
    write.folder(ETC, 0o750, owner=("root", host.CONFIG_GROUP))
    write.folder(f"{ETC}/tls", 0o750, owner=("root", host.CONFIG_GROUP))
    for rel, data in sorted(bundle.files.items()):
        if rel == bundles.SIGNATURE:
            continue
        destination = INSTALLED_MANIFEST if rel == bundles.MANIFEST else rel
        group = FILE_GROUPS.get(rel)
        write.file(f"{ETC}/{destination}", data, 0o640 if group else 0o644, group or "root")
    write.file(f"{ETC}/kivy.env", (SYSTEMD_FILES / "kivy.env").read_bytes(), 0o644)
    write.folder(STORE, 0o2770, owner=("root", host.CONFIG_GROUP))
    write.changed += _regroup_store(write)
    write.folder(f"{STORE}/kivy", 0o700, owner=("kiosk", "kiosk"))
    write.folder(f"{STORE}/voice-cache", 0o700, owner=("kiosk", "kiosk"))
    kiosk_unit = (
        "city-kiosk-kiosk-door.service"
        if role == "door"
        else (f"city-kiosk-kiosk-{display}.service")
    )
    sources = {
        "city-kiosk-lockctl.service": "city-kiosk-lockctl.service",
        "city-kiosk-sync.service": "city-kiosk-sync.service",
        "city-kiosk-kiosk.service": kiosk_unit,
    }
    for unit, source in sources.items():
        write.file(f"{UNIT_DIR}/{unit}", (SYSTEMD_FILES / source).read_bytes(), 0o644)
    write.file(JOURNALD_DROP_IN, (SYSTEMD_FILES / "journald.conf").read_bytes(), 0o644)
    write.file(WATCHDOG_DROP_IN, (SYSTEMD_FILES / "watchdog.conf").read_bytes(), 0o644)
    write.file(POLKIT_RULE_PATH, (POLKIT_FILES / POLKIT_RULE).read_bytes(), 0o644)
    return f"files: {len(write.changed)} changed" + (
        f" ({', '.join(write.changed)})" if write.changed else ""
    )


def _regroup_store(write: _Writer) -> list[str]:
    """Releases before the per-service users kept the store in group ``kiosk``;
    its files move to the store's group so every service can write them."""
    if not write.root_user:
        return []
    old = host.account_ids(write.target, "root", host.UNLOCK_GROUP)[1]
    new = host.account_ids(write.target, "root", host.CONFIG_GROUP)[1]
    moved = nofollow.regroup_files(write.target.root, STORE, old, new)
    return [f"{STORE}/{name}" for name in moved]


def rollback_install(root: Path, say: Callable[[str], None] = print) -> tuple[str, str, bool]:
    """``python -m deploy rollback``: current <-> previous, then restart the units."""
    target = Target(root)
    if target.live and os.geteuid() != 0:
        raise InstallError("rollback must run as root (sudo)", EXIT_USAGE)
    with _install_lock(target):
        before, after = release.rollback(release.Layout(target))
        restarted = host.restart_units(target, UNITS)
    say(
        f"rolled back: current {before} -> {after}"
        + ("; units restarted" if restarted else "; no running systemd, units not restarted")
    )
    return before, after, restarted
