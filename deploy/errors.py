"""The deploy package's exceptions: one tree, each carrying a clear message.

``InstallError`` also carries the installer's exit code (see
:mod:`deploy.install` and docs/provisioning.md), so the CLI maps every failure
to one line on stderr and one documented code.
"""

from __future__ import annotations

from foundation.errors import ProductError


class DeployError(ProductError):
    """Base of every deploy failure; the message says what to do."""


class FleetError(DeployError):
    """The fleet folder or a request about it is not usable; the message says why."""


class FleetUsageError(FleetError, ValueError):
    """A bad argument (device id, facility id, existing device)."""


class BundleError(DeployError):
    """A device bundle is unreadable, tampered with, expired or for another device."""


class InstallError(DeployError):
    """The installer stopped; ``exit_code`` is one of the documented codes."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
