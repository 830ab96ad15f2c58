"""The error root of the whole product and the exit codes of its commands.

Every package has one exception tree whose root subclasses :class:`ProductError`.
Each error carries a message written for the person who has to act on it
(technician, operator): what is wrong, where, and what to do; and the exit
code a command line ends with when the error reaches it
(:func:`foundation.cli.run_cli`).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_STORE = 4


class ProductError(Exception):
    """Root of every error raised by this product's code."""

    exit_code = EXIT_FAILED


class ConfigError(ProductError, ValueError):
    """A configuration file is missing or invalid; ``problems`` name each key."""

    exit_code = EXIT_CONFIG
    #: What kind of configuration, for the message ("device", "central", ...).
    kind = "device"

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid {self.kind} configuration {path}:\n{lines}")


class PersonalDataError(ProductError, ValueError):
    """Data looks like personal data and was refused (defence in depth)."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"event data refused at {where}: {reason}")


class MissingKeyError(ConfigError):
    """A secret key file the configuration must name is not set. There is no
    fallback to a public demo key outside the demo, which names its own."""

    def __init__(self, path: str, key: str, kind: str = "device", how: str = "") -> None:
        self.kind = kind
        self.key = key
        detail = f": {how}" if how else ""
        super().__init__(path, [f"{key}: required, not set{detail}"])
