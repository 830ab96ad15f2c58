"""Changing files as root without following symbolic links.

The installer runs as root and changes folders that other users can write to
(the store folder is group-writable by the device's services; the kiosk owns
its Kivy home and voice cache). A link planted there (say ``kivy`` ->
``/etc``) would turn a root ``chown``/``chmod``/write into a gift to that
user. So every path the installer changes is opened one component at a time
from the target root with ``O_NOFOLLOW`` (``openat``), and owner, mode and
content are changed through the open descriptor (``fchown``, ``fchmod``,
a temporary file created ``O_EXCL`` and renamed within the same folder).
A symbolic link anywhere on such a path is refused with
:class:`PlantedLinkError`, naming it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from deploy.errors import InstallError

EXIT_PLANTED_LINK = 9
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO put in place of a file cannot hang the installer.
_FILE_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class PlantedLinkError(InstallError):
    """A path the installer changes is (or passes through) a symbolic link."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"refusing to follow the symbolic link {path}: the installer changes nothing"
            " through a link (was it planted by a device user?); inspect it, remove it"
            " and run the installer again",
            EXIT_PLANTED_LINK,
        )
        self.path = path


@dataclass(frozen=True)
class Owner:
    """Numeric owner for a changed path; ``None`` leaves it (non-root test runs)."""

    uid: int
    gid: int


def _parts(absolute: str) -> list[str]:
    parts = [p for p in PurePosixPath(absolute).parts if p not in ("/", ".")]
    if ".." in parts:
        raise InstallError(f"path {absolute!r} contains '..'", 2)
    return parts


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def _open_child(parent: int, name: str, shown: str, create: int | None) -> int:
    """The folder ``name`` in ``parent``, never through a link; made when missing."""
    for _attempt in range(2):
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if create is None:
                raise
            # Made meanwhile by someone else: opened (and checked) on the next attempt.
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, create, dir_fd=parent)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(name, parent):
                raise PlantedLinkError(shown) from None
            if exc.errno == errno.ENOTDIR:
                raise InstallError(f"{shown} is not a folder", 1) from None
            raise
    raise InstallError(f"{shown} keeps changing while the installer creates it", 1)


@contextmanager
def open_folder(root: Path, absolute: str, *, create: int | None = None) -> Iterator[int]:
    """A descriptor of ``root/absolute``; every component below ``root`` is
    opened without following links (made with mode ``create`` when missing)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    shown = PurePosixPath("/")
    try:
        for name in _parts(absolute):
            shown = shown / name
            child = _open_child(fd, name, str(shown), create)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def refuse_links(root: Path, paths: Iterable[str]) -> None:
    """Raise :class:`PlantedLinkError` for the first path that is or passes
    through a link (missing paths are fine): the installer checks before it
    changes anything, and every change checks again on its own descriptor."""
    for absolute in paths:
        parts = _parts(absolute)
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for depth, name in enumerate(parts):
                if _is_link(name, fd):
                    raise PlantedLinkError("/" + "/".join(parts[: depth + 1]))
                if depth == len(parts) - 1:
                    break
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except (FileNotFoundError, NotADirectoryError):
                    break
                os.close(fd)
                fd = child
        finally:
            os.close(fd)


def _apply(fd: int, mode: int, owner: Owner | None) -> bool:
    """Set owner (first: chown clears set-id bits) and mode; True if anything changed."""
    info = os.fstat(fd)
    changed = False
    if owner is not None and (info.st_uid, info.st_gid) != (owner.uid, owner.gid):
        os.fchown(fd, owner.uid, owner.gid)
        changed = True
    if stat.S_IMODE(os.fstat(fd).st_mode) != mode:
        os.fchmod(fd, mode)
        changed = True
    return changed


def ensure_folder(root: Path, absolute: str, mode: int, owner: Owner | None) -> bool:
    """Make ``absolute`` a folder with this mode and owner; True if anything changed."""
    parent, name = str(PurePosixPath(absolute).parent), PurePosixPath(absolute).name
    with open_folder(root, parent, create=0o755) as above:
        # Made private first; widened to ``mode`` only once its owner is right.
        fd = _open_child(above, name, absolute, 0o700)
        try:
            return _apply(fd, mode, owner)
        finally:
            os.close(fd)


def _read_existing(folder: int, name: str, shown: str) -> tuple[bytes, int] | None:
    """(content, descriptor) of the regular file ``name``; None when absent."""
    try:
        fd = os.open(name, _FILE_READ_FLAGS, dir_fd=folder)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PlantedLinkError(shown) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InstallError(f"{shown} is not a regular file: move it away", 1)
    with os.fdopen(fd, "rb", closefd=False) as stream:
        return stream.read(), fd


def write_file(root: Path, absolute: str, data: bytes, mode: int, owner: Owner | None) -> bool:
    """Write ``data`` atomically unless the file holds it already, then set mode
    and owner; True if content or metadata changed. Folders on the way are made
    root-only (0755 once the installer set them)."""
    parent, name = str(PurePosixPath(absolute).parent), PurePosixPath(absolute).name
    with open_folder(root, parent, create=0o755) as folder:
        existing = _read_existing(folder, name, absolute)
        if existing is not None:
            content, fd = existing
            try:
                if content == data:
                    return _apply(fd, mode, owner)
            finally:
                os.close(fd)
        temporary = f".{name}.city-kiosk-new"
        with contextlib.suppress(FileNotFoundError):  # an interrupted earlier run
            os.unlink(temporary, dir_fd=folder)  # (unlink never follows a link)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(temporary, flags, 0o600, dir_fd=folder)
        try:
            _write_all(fd, data)
            _apply(fd, mode, owner)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
        return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def regroup_files(root: Path, absolute: str, old_gid: int, new_gid: int) -> list[str]:
    """Regular files directly in ``absolute`` with group ``old_gid`` get ``new_gid``
    and group read/write (the store after its group changed); links, folders
    and hard-linked files are left alone. Returns the names changed."""
    changed = []
    with open_folder(root, absolute) as folder:
        for entry in os.scandir(folder):
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode) or info.st_gid != old_gid or info.st_nlink != 1:
                continue
            try:
                fd = os.open(entry.name, _FILE_READ_FLAGS, dir_fd=folder)
            except OSError:
                continue  # replaced meanwhile (a link, or gone): not ours to change
            try:
                now = os.fstat(fd)
                if (now.st_ino, now.st_dev) != (info.st_ino, info.st_dev):
                    continue
                os.fchown(fd, -1, new_gid)
                os.fchmod(fd, stat.S_IMODE(now.st_mode) | 0o060)
                changed.append(entry.name)
            finally:
                os.close(fd)
    return changed
