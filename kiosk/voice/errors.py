"""The voice's exceptions (under the kiosk's root). None of them reaches a
screen: the voice falls silent and logs once."""

from __future__ import annotations

from kiosk.errors import KioskError


class VoiceError(KioskError):
    """Root of the voice guidance's errors."""


class SynthesisFailed(VoiceError):
    """A synthesiser could not speak a sentence (missing, crashed, timed out)."""


class NoOutput(VoiceError, OSError):
    """The sound device could not be opened."""
