"""The one exception tree of :mod:`central.commands`."""

from __future__ import annotations

from central.errors import CentralError

# The HTTP status each refusal code answers with (API and device listener);
# a command refused for what it asks is 409, as the API's other refusals.
STATUS = {
    "not_configured": 503,
    "unknown_device": 404,
    "unknown_command": 404,
    "unknown_door": 409,
    "over_cap": 409,
    "bad_args": 409,
    "bad_reason": 409,
    "bad_lifetime": 409,
    "no_devices": 409,
    "second_factor_required": 403,
    "wrong_device": 403,
    "no_attachment": 409,
    "already_uploaded": 409,
    "wrong_type": 415,
    "too_large": 413,
    "personal_data": 422,
}


class CommandsError(CentralError):
    """Root of the errors of remote commands."""


class CommandRefused(CommandsError):
    """A command (or an upload) refused before anything was sent or stored:
    ``code`` names why (a key of :data:`STATUS`), ``message`` says it to the
    person who asked."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return STATUS.get(self.code, 422)


class NotConfigured(CommandRefused):
    """No signing key: central cannot issue commands."""

    def __init__(self, message: str) -> None:
        super().__init__("not_configured", message)
