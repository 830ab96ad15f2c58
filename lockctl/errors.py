"""The one exception tree of the ``lockctl`` package.

Messages are written for the person who has to act: the technician at the
door, or the kiosk developer calling the socket API.
"""

from __future__ import annotations

from foundation.errors import ProductError


class LockctlError(ProductError):
    """Root of every error raised by the lockctl package."""


class RequestError(LockctlError, ValueError):
    """A socket request that cannot be carried out; nothing was changed.

    ``code`` is the machine-readable reason sent back in the error reply
    (``bad_json``, ``too_large``, ``bad_request``, ``unknown_op``,
    ``unknown_door``, ``bad_seconds``, ``bad_reason``, ``bad_ref``,
    ``mock_only``, ``lockdown``, ``internal``; the server adds ``busy``).
    """

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        self.req_id: object = None  # the request's id, when it could be read
        super().__init__(f"{code}: {message}")


class DoorLockedDown(RequestError):
    """An unlock requested for a door in lockdown (a remote ``door.lockdown``);
    only ``door.release`` ends it. The exit button is never refused."""

    def __init__(self, door: str) -> None:
        super().__init__(
            "lockdown",
            f"door {door!r} is in lockdown (closed by staff from the office); nothing"
            " unlocked. Only staff can release it (door.release); the exit button still works",
        )


class HardwareError(LockctlError, OSError):
    """A GPIO pin or the pin factory cannot be used (in use, no GPIO, bad pin)."""


class LockctlUnavailableError(LockctlError, ConnectionError):
    """The lock controller daemon cannot be reached on its socket."""


class LockctlProtocolError(LockctlError, ValueError):
    """The daemon answered something that is not a valid reply."""
