"""The test run's private pcscd with two vpcd slots: the same
:class:`cardreader.sim.pcscd.PrivatePcscd` the demo uses, reporting a start
failure as the harness's :class:`ServiceError` (so it fails, never skips)."""

from __future__ import annotations

from cardreader.sim.pcscd import READER_NAMES, PcscdError, PrivatePcscd
from tests.harness.services import ServiceError

__all__ = ["READER_NAMES", "Pcscd"]


class Pcscd(PrivatePcscd):
    def start(self, timeout: float = 10.0) -> Pcscd:
        try:
            super().start(timeout)
        except PcscdError as exc:
            raise ServiceError(str(exc)) from None
        return self
