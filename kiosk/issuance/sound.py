"""The "take your card" sound: a port with a Kivy side and a simulated one.

The copier at the convenience store has no card-left alarm and many cards
are left behind (kiosk-ux.md §1.6); the kiosk plays a chime until the card
is removed. The chime is generated (a two-tone WAV written once into a
cache folder), so no binary file ships with the code.
"""

from __future__ import annotations

import logging
import math
import struct
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RATE = 22050


def write_chime(path: Path) -> Path:
    """Two short tones (E6, C6), 16-bit mono, with soft edges."""
    frames = bytearray()
    for freq in (1318.5, 1046.5):
        count = int(RATE * 0.18)
        for i in range(count):
            envelope = min(1.0, i / 200, (count - i) / 200)
            sample = int(12000 * envelope * math.sin(2 * math.pi * freq * i / RATE))
            frames += struct.pack("<h", sample)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(bytes(frames))
    return path


@dataclass
class SimulatedSound:
    """Counts the alerts (tests, the demo without audio)."""

    played: int = 0

    def alert(self) -> None:
        self.played += 1


class KivySound:
    """Kivy's SoundLoader playing the generated chime; silent (one log line)
    when the device has no audio provider."""

    def __init__(self, cache_dir: Path) -> None:
        from kivy.core.audio import SoundLoader

        self._sound: Any = SoundLoader.load(str(write_chime(cache_dir / "take-card.wav")))
        if self._sound is None:
            log.warning("no audio output: the take-your-card chime is silent")

    def alert(self) -> None:
        if self._sound is not None:
            self._sound.stop()
            self._sound.play()
