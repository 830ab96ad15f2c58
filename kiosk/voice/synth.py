"""Speech synthesisers behind one small interface: Open JTalk for Japanese,
eSpeak NG for the other languages, and a simulated one for tests.

Each writes one WAV file per sentence. ``voice_id`` names the engine, its
version, the voice and its settings: it is part of every cache key, so a new
synthesiser version or voice never plays stale audio.
"""

from __future__ import annotations

import functools
import hashlib
import math
import struct
import subprocess
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from kiosk.voice.errors import SynthesisFailed

SYNTH_TIMEOUT_SECONDS = 30.0


class Synthesiser(Protocol):
    @property
    def voice_id(self) -> str: ...

    def synthesise(self, text: str, out: Path) -> None:
        """Write ``text`` spoken as a 16-bit mono WAV to ``out``; raises
        :class:`~kiosk.voice.errors.SynthesisFailed`."""


def _run(command: list[str], text: str, what: str) -> None:
    try:
        done = subprocess.run(
            command,
            input=text.encode("utf-8"),
            capture_output=True,
            timeout=SYNTH_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SynthesisFailed(f"{what}: {exc}") from exc
    if done.returncode != 0:
        raise SynthesisFailed(f"{what} exited {done.returncode}: {done.stderr[:200]!r}")


@functools.cache
def tool_version(binary: str) -> str:
    """The first line a synthesiser prints about its version ("" if absent)."""
    try:
        done = subprocess.run(
            [binary, "--version"], capture_output=True, timeout=10, check=False, text=True
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0].strip() if lines else ""


@functools.cache
def file_digest(path: Path) -> str:
    """A short digest of a voice file (its version, for the cache key)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    except OSError:
        return "missing"


@dataclass(frozen=True)
class EspeakSynth:
    """eSpeak NG (Debian ``espeak-ng``) with one of its voices."""

    voice: str
    speed: int = 150  # words per minute; eSpeak's default is 175
    binary: str = "espeak-ng"

    @property
    def voice_id(self) -> str:
        version = tool_version(self.binary).removeprefix("eSpeak NG text-to-speech: ")
        return f"espeak-ng/{version.split()[0] if version else '?'}/{self.voice}/{self.speed}"

    def synthesise(self, text: str, out: Path) -> None:
        command = [self.binary, "-v", self.voice, "-s", str(self.speed), "-b", "1"]
        _run([*command, "-w", str(out), "--stdin"], text, f"espeak-ng ({self.voice})")


@dataclass(frozen=True)
class JTalkSynth:
    """Open JTalk (Debian ``open-jtalk``) with the NAIST dictionary and an
    HTS voice file (``.htsvoice``)."""

    voice_file: Path
    dictionary: Path
    speed: float = 1.0
    binary: str = "open_jtalk"

    @property
    def voice_id(self) -> str:
        version = file_digest(self.voice_file)
        return f"open_jtalk/{self.voice_file.stem}-{version}/{self.speed:g}"

    def synthesise(self, text: str, out: Path) -> None:
        command = [self.binary, "-x", str(self.dictionary), "-m", str(self.voice_file)]
        _run([*command, "-r", f"{self.speed:g}", "-ow", str(out)], text, "open_jtalk")


@dataclass
class SimulatedSynth:
    """A soft tone as long as the text would take to say (tests, benches);
    ``made`` lists the texts synthesised, ``fail`` makes it fail."""

    name: str = "sim"
    rate: int = 16000
    made: list[str] = field(default_factory=list)
    fail: bool = False

    @property
    def voice_id(self) -> str:
        return f"sim/{self.name}"

    def synthesise(self, text: str, out: Path) -> None:
        if self.fail:
            raise SynthesisFailed("simulated failure")
        self.made.append(text)
        write_tone(out, seconds=max(0.4, 0.06 * len(text)), rate=self.rate)


def write_tone(out: Path, seconds: float, rate: int = 16000, freq: float = 440.0) -> None:
    count = int(rate * seconds)
    samples = (int(3000 * math.sin(2 * math.pi * freq * i / rate)) for i in range(count))
    with wave.open(str(out), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"".join(struct.pack("<h", s) for s in samples))
