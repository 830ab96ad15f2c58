"""Headroom for the device store: a reserve file that is given back to the
filesystem when it fills, so that draining the outbox always works.

Why a file and not a size cap (``PRAGMA max_page_count``): the store is not
the only thing that can fill the disk (logs, the audio cache, a printer
spool), and a cap only stops the store itself. Why not space inside the
database: deleting rows in WAL mode first *appends* to the ``-wal`` file, so
a drain needs free bytes on the filesystem, not free pages in the database.

The reserve is ``<store>.reserve`` beside the store, ``store.reserve_mb`` in
size, allocated with real blocks (``posix_fallocate``). The rules:

- An ordinary write (an append, a reservation update) goes ahead only while
  the reserve exists, or can be re-created because the filesystem has room
  for it twice over. Otherwise it is refused up front with
  :class:`~sync.errors.StoreFullError`: it never eats into the reserve.
- A write that frees space or keeps the agent draining (deleting confirmed
  events, the agent's small state rows) may use the reserve: when free space
  is below the reserve's size, the reserve is released first.
- Any write that still meets a full disk releases the reserve, so the next
  draining write finds room.

The reserve is shared by every process through the filesystem (its
presence is the signal): when the kiosk releases it, lockctl's writer and the
agent see it gone at their next write (within a burst of appends, after at
most ``RECHECK_WRITES`` writes or ``RECHECK_SECONDS``).
"""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from time import monotonic
from typing import Any

log = logging.getLogger(__name__)

SUFFIX = ".reserve"
DISK_ACTION = (
    "Committed events are kept and the sync agent still sends them; free space on the"
    " device's disk (old logs, spool files) or give the store more room"
)
_CHUNK = 1024 * 1024
# Appends in a burst share one look at the reserve: at most this many
# writes, and for this long, after a look found it in place. That bounds what
# a burst can write after another process released it (a few small
# commits); this process's own release, after any write met a full disk, is
# seen at once.
RECHECK_WRITES = 16
RECHECK_SECONDS = 0.01
_UNSEEN = (float("-inf"), RECHECK_WRITES)
# The stat() errors that Path.exists() takes for "not there".
_ABSENT = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP})


def free_bytes(folder: Path) -> int | None:
    """Bytes an unprivileged process may still write in ``folder``'s filesystem."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


@dataclass
class Reserve:
    """The reserve file of one store (``size`` 0: no reserve, never refuse)."""

    store_path: Path
    size: int
    _file: str = field(init=False, repr=False, compare=False)
    # (monotonic time the reserve was last seen in place, writes let through since)
    _seen: tuple[float, int] = field(init=False, repr=False, compare=False, default=_UNSEEN)

    @property
    def path(self) -> Path:
        return self.store_path.with_name(self.store_path.name + SUFFIX)

    def __post_init__(self) -> None:
        # The path as text, made once: held() runs before every write.
        self._file = str(self.path)

    def held(self) -> bool:
        # Presence, not size: it is only ever put in place whole (renamed from
        # a finished file), and a process configured with another size must
        # not replace the one in place. Path.exists()'s answer, without
        # building a Path per call.
        try:
            os.stat(self._file)  # noqa: PTH116 (the text made once, see above)
        except OSError as exc:
            if exc.errno in _ABSENT:
                return False
            raise
        return True

    def space_low(self) -> bool:
        """True when ordinary writes are refused: the reserve is gone and
        cannot be put back (what health reports as ``store_full``)."""
        if self.size <= 0 or self.held():
            return False
        free = free_bytes(self.store_path.parent)
        return free is not None and free < 2 * self.size

    def ready_for_ordinary_write(self) -> bool:
        """May an append go ahead? Re-creates a released reserve when there is room."""
        if self.size <= 0:
            return True
        # A burst shares one look: a stat() per append cost 4-6 us of CPU on
        # the 2-core VM, against 30-115 us for a whole raw sqlite3 append.
        # Writes spaced more than RECHECK_SECONDS apart, as a device's are,
        # each look.
        seen, writes = self._seen
        now = monotonic()
        if writes < RECHECK_WRITES and now - seen < RECHECK_SECONDS:
            self._seen = (seen, writes + 1)
            return True
        if not self.held():
            free = free_bytes(self.store_path.parent)
            if free is None or free < 2 * self.size or not self._create():
                return False
        self._seen = (now, 1)
        return True

    def before_draining_write(self, why: str = "free space below the reserve") -> bool:
        """Give the reserve back when the filesystem has less than its size
        free; True if it was released now."""
        if self.size <= 0:
            return False
        free = free_bytes(self.store_path.parent)
        return free is not None and free < self.size and self.release(why)

    def release(self, why: str) -> bool:
        """Delete the reserve file; True if there was one to delete."""
        self._seen = _UNSEEN  # this process's next append looks again
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            log.error("store reserve cannot be released", extra={"error": str(exc)})
            return False
        log.warning(
            "store reserve released: the disk is full; appends are refused until space is freed",
            extra={"store": str(self.store_path), "reserve_bytes": self.size, "why": why},
        )
        return True

    def _create(self) -> bool:
        # Written under a name of this process, then renamed: two processes
        # re-creating it at once each leave one whole file, never a short one.
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                _allocate(fd, self.size)
                os.fsync(fd)
            finally:
                os.close(fd)
            tmp.replace(self.path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            log.warning("store reserve cannot be created", extra={"error": str(exc)})
            return False
        log.info("store reserve in place", extra={"reserve_bytes": self.size})
        return True


def _allocate(fd: int, size: int) -> None:
    try:
        os.posix_fallocate(fd, 0, size)
        return
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # no fallocate here
            raise
    # Real blocks, not a sparse file: write zeros.
    zeros = bytes(_CHUNK)
    left = size
    while left > 0:
        left -= os.write(fd, zeros[: min(left, _CHUNK)])


def disk_report(store_path: Path, reserve_bytes: int) -> dict[str, Any]:
    """The store's disk as ``store-check`` prints it (and the technician reads it)."""
    reserve = Reserve(store_path, reserve_bytes)
    free = free_bytes(store_path.parent)
    try:
        read_only = bool(os.statvfs(store_path.parent).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    return {
        "free_mb": None if free is None else round(free / 1e6, 2),
        "reserve_mb": round(reserve_bytes / 1e6, 2),
        "reserve_held": reserve.size <= 0 or reserve.held(),
        "appends_refused": reserve.space_low(),
        "read_only": read_only,
    }
