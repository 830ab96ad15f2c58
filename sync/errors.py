"""The one exception tree of the ``sync`` package.

Each error carries a message written for the person who has to act on it
(technician or operator): what is wrong, where, and what to do.
"""

from __future__ import annotations


class SyncError(Exception):
    """Root of every error raised by the sync package."""


class ConfigError(SyncError, ValueError):
    """The device configuration file is missing or invalid."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid device configuration {path}:\n{lines}")


class StoreError(SyncError):
    """The device store cannot be used."""

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


class PersonalDataError(SyncError, ValueError):
    """Event data looks like personal data and was refused (defence in depth)."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"event data refused at {where}: {reason}")
