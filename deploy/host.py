"""The operating-system side of the installer: Debian packages, accounts,
systemd, the kernel command line. Every function works on a :class:`Target`
root: ``/`` on a device, any folder for a throwaway install in tests.

With a root other than ``/`` nothing outside it is changed: apt only
*simulates* the installation against this machine's package sources (so a
missing package or source is still found), accounts are written into the
root's own passwd/group files (``useradd --root``), and units are enabled with
``systemctl --root`` (symlinks, no running systemd needed).
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy import nofollow
from deploy.errors import InstallError

EXIT_FAILED, EXIT_APT = 1, 5

# Never on a kiosk: the virtual reader driver listens on all interfaces.
FORBIDDEN_PACKAGES = frozenset({"vsmartcard-vpcd"})
COMMON_PACKAGES = (
    "pcscd",  # PC/SC daemon for the card reader
    "python3-venv",
    # pyscard and pycups have no wheels for the Pi: pip builds them.
    "python3-dev",
    "build-essential",
    "libpcsclite-dev",
    "libcups2-dev",
    "fonts-noto-cjk",  # Japanese, Chinese and Korean UI text
    "fonts-noto-core",  # Latin (incl. Vietnamese) UI text
    "fonts-sil-annapurna",  # Nepali UI text: Devanagari with Latin letters
    "fonts-ipaexfont-gothic",  # Japanese in certificate PDFs
    "libmtdev1",  # Kivy's multitouch input
    "libgl1",
    "libegl1",
    "libgles2",
    "libgl1-mesa-dri",
    # Voice guidance (kiosk/voice): the synthesisers, Open JTalk's dictionary,
    # ALSA's tools, and its headers for pip to build pyalsaaudio.
    "espeak-ng",
    "open-jtalk",
    "open-jtalk-mecab-naist-jdic",
    "alsa-utils",
    "libasound2-dev",
    # Remote commands: the rule deploy/polkit/ installs lets the sync agent
    # restart the city-kiosk units and reboot (polkitd reads JavaScript rules).
    "polkitd",
)
COUNTER_PACKAGES = ("cups-daemon", "cups-client")
CAGE_PACKAGES = ("cage", "xwayland")

# Least privilege on the device (docs/provisioning.md, "Users, groups and
# secrets"): each service runs as its own user, and each group grants exactly
# one thing, so a file's group says who may read it.
CONFIG_GROUP = "city-kiosk"  # reads /etc/city-kiosk/device.toml, writes the store
DEVICE_KEY_GROUP = "city-kiosk-devkey"  # reads tls/device.key (mTLS: MQTT, HTTPS)
CARD_KEY_GROUP = "city-kiosk-cardkey"  # reads credential.key and code.key (cards, codes)
UNLOCK_GROUP = "kiosk"  # may reach lockctl's unlock socket (lock.socket_group)
SYNC_USER = "city-kiosk-sync"
GROUPS = ("gpio", "kiosk", "video", "input", "render", CONFIG_GROUP, DEVICE_KEY_GROUP,
          CARD_KEY_GROUP)  # fmt: skip
# user -> (supplementary groups); each user also gets its own primary group.
USERS = {
    "kiosk": ("video", "input", "render", CONFIG_GROUP, DEVICE_KEY_GROUP, CARD_KEY_GROUP),
    "lockctl": ("gpio", UNLOCK_GROUP, CONFIG_GROUP),
    SYNC_USER: (CONFIG_GROUP, DEVICE_KEY_GROUP),
}
# The groups that guard a secret or the doors list exactly these members: a
# technician's account added by hand is removed again by the next install.
EXACT_MEMBERS = {
    UNLOCK_GROUP: ("lockctl",),  # kiosk is in it as its primary group
    DEVICE_KEY_GROUP: ("kiosk", SYNC_USER),
    CARD_KEY_GROUP: ("kiosk",),
    CONFIG_GROUP: ("kiosk", "lockctl", SYNC_USER),
}


@dataclass(frozen=True)
class Target:
    """The system being installed: ``/`` or a folder holding a root file system."""

    root: Path

    @property
    def live(self) -> bool:
        return self.root.resolve() == Path("/")

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")


def run(
    command: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command), check=False, capture_output=True, text=True, env=env, cwd=cwd
    )


def debian_packages(role: str, display: str, extra: Sequence[str] = ()) -> list[str]:
    """The Debian packages a device of this role needs."""
    packages = list(COMMON_PACKAGES)
    if role == "counter":
        packages += COUNTER_PACKAGES
        if display == "cage":
            packages += CAGE_PACKAGES
    packages += [p for p in extra if p not in packages]
    forbidden = FORBIDDEN_PACKAGES.intersection(packages)
    if forbidden:
        raise InstallError(
            f"refusing to install {', '.join(sorted(forbidden))} on a kiosk"
            " (a test-only virtual reader that listens on the network)",
            EXIT_APT,
        )
    return packages


def ensure_packages(target: Target, packages: Sequence[str], *, simulate: bool = False) -> str:
    """Install ``packages`` (live root), or simulate it (other roots, or ``simulate``)."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    base = ["apt-get", "install", "-y", "-q", "--no-install-recommends"]
    if simulate or not target.live:
        done = run([*base, "--simulate", *packages], env)
        _raise_for_apt(done, simulated=True)
        return f"apt: {len(packages)} packages resolve (simulated, root {target.root})"
    _refuse_installed_vpcd()
    update = run(["apt-get", "update", "-q"], env)
    if update.returncode != 0:
        raise InstallError(
            "apt-get update failed (no network or a broken package source?): "
            f"{_last_error(update.stderr)}; fix the network, or use --skip-apt when the"
            " packages are already installed",
            EXIT_APT,
        )
    _raise_for_apt(run([*base, *packages], env), simulated=False)
    return f"apt: {len(packages)} packages installed"


def _raise_for_apt(done: subprocess.CompletedProcess[str], *, simulated: bool) -> None:
    if done.returncode == 0:
        return
    missing = re.findall(r"Unable to locate package (\S+)", done.stderr)
    missing += re.findall(r"Package '?(\S+?)'? has no installation candidate", done.stderr)
    if missing:
        raise InstallError(
            f"apt cannot find the Debian package(s) {', '.join(missing)}: add the package"
            " source that provides them (Debian 12 main, or the Raspberry Pi OS archive)"
            " and run apt-get update",
            EXIT_APT,
        )
    what = "simulated install" if simulated else "install"
    raise InstallError(f"apt-get {what} failed: {_last_error(done.stderr)}", EXIT_APT)


def _refuse_installed_vpcd() -> None:
    done = run(["dpkg-query", "-W", "-f=${Status}", "vsmartcard-vpcd"])
    if "install ok installed" in done.stdout:
        raise InstallError(
            "vsmartcard-vpcd is installed: it is for tests only and listens on the network;"
            " remove it (apt-get purge vsmartcard-vpcd) and run the installer again",
            EXIT_APT,
        )


def _last_error(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("E:")]
    return (errors or lines or ["no output"])[-1]


def _names(path: Path) -> set[str]:
    if not path.exists():
        return set()
    return {line.split(":", 1)[0] for line in path.read_text().splitlines() if line}


def ensure_accounts(target: Target) -> list[str]:
    """System groups and users (idempotent); returns what was created."""
    root = [] if target.live else ["--root", str(target.root.resolve())]
    created = []
    groups = _names(target.path("/etc/group"))
    for group in GROUPS:
        if group not in groups:
            _checked(["groupadd", *root, "--system", group], f"creating group {group}")
            created.append(f"group {group}")
    users, groups = _names(target.path("/etc/passwd")), _names(target.path("/etc/group"))
    for user, extra in USERS.items():
        if user in users:
            _checked(
                ["usermod", *root, "--append", "--groups", ",".join(extra), user],
                f"adding {user} to {', '.join(extra)}",
            )
            continue
        primary = ["--gid", user] if user in groups else ["--user-group"]
        _checked(
            [
                "useradd",
                *root,
                "--system",
                *primary,
                "--groups",
                ",".join(extra),
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                user,
            ],
            f"creating user {user}",
        )
        created.append(f"user {user}")
    for group, members in EXACT_MEMBERS.items():
        _checked(
            ["gpasswd", *(["--root", root[1]] if root else []), "--members", ",".join(members),
             group],
            f"setting the members of {group}",
        )  # fmt: skip
    return created


def _checked(command: list[str], what: str) -> None:
    done = run(command)
    if done.returncode != 0:
        raise InstallError(f"{what} failed: {_last_error(done.stderr)}", EXIT_FAILED)


def account_ids(target: Target, user: str, group: str) -> tuple[int, int]:
    """uid of ``user`` and gid of ``group`` in the target's own files."""

    def lookup(path: Path, name: str) -> int:
        for line in path.read_text().splitlines():
            fields = line.split(":")
            if fields[0] == name:
                return int(fields[2])
        raise InstallError(f"{name} is missing from {path}", EXIT_FAILED)

    return lookup(target.path("/etc/passwd"), user), lookup(target.path("/etc/group"), group)


def systemd_running(target: Target) -> bool:
    return target.live and Path("/run/systemd/system").is_dir()


def enable_units(target: Target, units: Sequence[str]) -> None:
    """Enable ``units`` (and reload systemd when it runs this system)."""
    if systemd_running(target):
        _checked(["systemctl", "daemon-reload"], "systemctl daemon-reload")
        _checked(["systemctl", "enable", *units], "enabling the units")
    else:
        _checked(
            ["systemctl", f"--root={target.root.resolve()}", "enable", *units], "enabling the units"
        )


def restart_units(target: Target, units: Sequence[str]) -> bool:
    """Restart ``units`` when systemd runs this system; False when there is none."""
    if not systemd_running(target):
        return False
    _checked(["systemctl", "daemon-reload"], "systemctl daemon-reload")
    _checked(["systemctl", "restart", *units], "restarting the units")
    return True


CMDLINE_FILES = ("/boot/firmware/cmdline.txt", "/boot/cmdline.txt")
GRUB_DROP_IN = "/etc/default/grub.d/city-kiosk.cfg"


def disable_console_blanking(target: Target) -> str:
    """``consoleblank=0`` on the kernel command line (Raspberry Pi or GRUB)."""
    for name in CMDLINE_FILES:
        path = target.path(name)
        if path.exists():
            words = path.read_text().split()
            if "consoleblank=0" in words:
                return f"{name}: consoleblank=0 already set"
            words = [w for w in words if not w.startswith("consoleblank=")] + ["consoleblank=0"]
            text = (" ".join(words) + "\n").encode()
            _write_root_file(target, name, text, stat.S_IMODE(path.lstat().st_mode))
            return f"{name}: consoleblank=0 added (active after reboot)"
    if target.path("/etc/default/grub").exists():
        line = b'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT consoleblank=0"\n'
        _write_root_file(target, GRUB_DROP_IN, line, 0o644)
        return f"{GRUB_DROP_IN} written: run update-grub, then reboot"
    return "no kernel command line found: add consoleblank=0 to it by hand"


def _write_root_file(target: Target, absolute: str, data: bytes, mode: int) -> None:
    owner = nofollow.Owner(0, 0) if os.geteuid() == 0 else None
    nofollow.write_file(target.root, absolute, data, mode, owner)
