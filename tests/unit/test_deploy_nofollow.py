"""deploy/nofollow.py on its own, in a temporary root: every change goes
through descriptors opened without following links, so a link planted after
the installer's up-front check (a race) is refused by the change itself."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deploy.nofollow import (
    Owner,
    PlantedLinkError,
    ensure_folder,
    refuse_links,
    regroup_files,
    write_file,
)

NOBODY = Owner(65534, 65534)


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A folder standing for /etc, with a file standing for /etc/shadow."""
    folder = tmp_path / "victim"
    folder.mkdir(mode=0o755)
    (folder / "shadow").write_text("root:*:19000::::::\n")
    (folder / "shadow").chmod(0o640)
    return folder


def untouched(victim: Path) -> list[tuple[int, int, int, bytes]]:
    """Owner, group, mode (and content of the file) of the victim and its file."""
    shadow = victim / "shadow"
    return [
        (path.stat().st_uid, path.stat().st_gid, path.stat().st_mode, content)
        for path, content in ((victim, b""), (shadow, shadow.read_bytes()))
    ]


def test_nofollow_ensure_folder_refuses_a_planted_folder_link(tmp_path: Path, victim: Path) -> None:
    root = tmp_path / "root"
    (root / "var/lib/city-kiosk").mkdir(parents=True)
    (root / "var/lib/city-kiosk/kivy").symlink_to(victim)
    before = untouched(victim)
    with pytest.raises(PlantedLinkError) as refused:
        ensure_folder(root, "/var/lib/city-kiosk/kivy", 0o700, NOBODY)
    assert refused.value.path == "/var/lib/city-kiosk/kivy"
    assert refused.value.exit_code == 9
    assert untouched(victim) == before


def test_nofollow_write_file_refuses_links_on_the_way_and_as_the_file(
    tmp_path: Path, victim: Path
) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/city-kiosk").symlink_to(victim)
    before = untouched(victim)
    with pytest.raises(PlantedLinkError) as through:
        write_file(root, "/etc/city-kiosk/shadow", b"owned\n", 0o644, NOBODY)
    assert through.value.path == "/etc/city-kiosk"
    (root / "etc/city-kiosk").unlink()
    (root / "etc/city-kiosk").mkdir()
    (root / "etc/city-kiosk/credential.key").symlink_to(victim / "shadow")
    with pytest.raises(PlantedLinkError) as refused:
        write_file(root, "/etc/city-kiosk/credential.key", b"owned\n", 0o644, NOBODY)
    assert refused.value.path == "/etc/city-kiosk/credential.key"
    assert untouched(victim) == before


def test_nofollow_write_file_changes_only_what_differs(tmp_path: Path) -> None:
    owner = Owner(os.geteuid(), os.getegid())
    assert write_file(tmp_path, "/etc/a/b.conf", b"one\n", 0o640, owner) is True
    assert (tmp_path / "etc/a/b.conf").stat().st_mode & 0o7777 == 0o640
    assert (tmp_path / "etc/a").stat().st_mode & 0o777 == 0o755
    assert write_file(tmp_path, "/etc/a/b.conf", b"one\n", 0o640, owner) is False
    assert write_file(tmp_path, "/etc/a/b.conf", b"one\n", 0o644, owner) is True
    assert write_file(tmp_path, "/etc/a/b.conf", b"two\n", 0o644, owner) is True
    assert (tmp_path / "etc/a/b.conf").read_bytes() == b"two\n"
    assert sorted(p.name for p in (tmp_path / "etc/a").iterdir()) == ["b.conf"]


def test_nofollow_refuse_links_names_the_first_link_and_allows_missing_paths(
    tmp_path: Path, victim: Path
) -> None:
    (tmp_path / "var/lib").mkdir(parents=True)
    refuse_links(tmp_path, ["/var/lib/city-kiosk/kivy", "/opt/city-kiosk/.install.lock"])
    (tmp_path / "var/lib/city-kiosk").symlink_to(victim)
    with pytest.raises(PlantedLinkError) as refused:
        refuse_links(tmp_path, ["/etc/city-kiosk/device.toml", "/var/lib/city-kiosk/kivy"])
    assert refused.value.path == "/var/lib/city-kiosk"


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's group to another needs root")
def test_nofollow_regroup_files_skips_links_and_hard_links(tmp_path: Path, victim: Path) -> None:
    store = tmp_path / "var/lib/city-kiosk"
    store.mkdir(parents=True)
    (store / "device.db").write_bytes(b"")
    (store / "device.db").chmod(0o640)
    (store / "device.db-wal").symlink_to(victim / "shadow")
    os.link(victim / "shadow", store / "device.db-shm")
    for path in (store / "device.db", victim / "shadow"):
        os.chown(path, 0, 4242)
    before = untouched(victim)
    assert regroup_files(tmp_path, "/var/lib/city-kiosk", 4242, 4343) == ["device.db"]
    info = (store / "device.db").stat()
    assert (info.st_gid, info.st_mode & 0o777) == (4343, 0o660)
    assert untouched(victim) == before
