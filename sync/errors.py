"""The one exception tree of the ``sync`` package (device store, outbox,
reservation cache, sync agent).

Configuration errors and the personal-data guard's refusals belong to the
foundation (:mod:`foundation.errors`); they are re-exported here because every
device process meets them through the store and the outbox.
"""

from __future__ import annotations

from foundation.errors import EXIT_STORE, ConfigError, PersonalDataError, ProductError

__all__ = [
    "ConfigError",
    "PersonalDataError",
    "StoreCorruptError",
    "StoreError",
    "StoreFullError",
    "StoreTooNewError",
    "StoreUnavailableError",
    "SyncError",
]


class SyncError(ProductError):
    """Root of every error raised by the sync package."""


class StoreError(SyncError):
    """The device store cannot be used."""

    exit_code = EXIT_STORE

    def __init__(self, path: str, problem: str, action: str) -> None:
        self.path = path
        self.problem = problem
        self.action = action
        super().__init__(f"device store {path}: {problem}. {action}")


class StoreUnavailableError(StoreError, OSError):
    """The store file or its folder cannot be created, opened or written."""


class StoreCorruptError(StoreError):
    """The file is not a SQLite database or fails its integrity check."""


class StoreTooNewError(StoreError):
    """The store was created by a newer version of this software."""


class StoreFullError(StoreUnavailableError):
    """The store's filesystem has no room for this write (SQLite ``SQLITE_FULL``).

    The write was rolled back and the connection is usable again; committed
    events are intact. Draining (deleting confirmed events) still works from
    the store's reserve (:mod:`sync.headroom`).
    """
