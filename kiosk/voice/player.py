"""Playing prompts: a port with an ALSA implementation and a simulated one.

:class:`AlsaPlayer` writes PCM to the configured ALSA device from its own
thread; a new prompt (or :meth:`stop`) ends the one playing at the next
period, and the device is released once a prompt has been heard (1.5 s
after its last period). Volume (0-100) scales the samples. A missing file
is skipped and a device that cannot be opened leaves the kiosk silent; each
is logged once, and the screens never notice. ``first_write`` records when
the first period of the latest prompt was written (``time.monotonic``), for
``bench/voice.py``.
"""

from __future__ import annotations

import logging
import threading
import time
import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)

PERIOD_FRAMES = 1024
# The device stays open this long after a prompt (the next one starts
# sooner), then is closed; ALSA's buffer has played out by then.
RELEASE_AFTER_SECONDS = 1.5


class Player(Protocol):
    first_write: float | None

    def play(self, files: Sequence[Path]) -> None:
        """Stop what is playing and play ``files`` one after the other."""

    def stop(self) -> None: ...

    def close(self) -> None: ...


class OnceLog:
    """Logs each kind of problem once per process, however often it recurs."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def warning(self, kind: str, message: str, **extra: object) -> None:
        with self._lock:
            if kind in self._seen:
                return
            self._seen.add(kind)
        log.warning(message, extra={"voice_problem": kind, **extra})


def read_wav(path: Path) -> tuple[int, int, bytes]:
    """(rate, channels, 16-bit frames) of a WAV file; raises OSError/wave.Error."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise wave.Error(f"{path.name}: not 16-bit")
        return wav.getframerate(), wav.getnchannels(), wav.readframes(wav.getnframes())


def scaled(frames: bytes, volume: int) -> bytes:
    """16-bit little-endian samples at ``volume`` percent (in numpy: a
    Python loop over samples would hold the GIL against the UI thread)."""
    if volume >= 100:
        return frames
    samples = np.frombuffer(frames, dtype="<i2")
    gain = max(0, volume) / 100
    return (samples * gain).astype("<i2").tobytes()


@dataclass
class SimulatedPlayer:
    """Records what it was asked to play (tests, the demo without sound)."""

    started: list[tuple[Path, ...]] = field(default_factory=list)
    stops: int = 0
    first_write: float | None = None

    def play(self, files: Sequence[Path]) -> None:
        self.started.append(tuple(files))
        self.first_write = time.monotonic()

    def stop(self) -> None:
        self.stops += 1

    def close(self) -> None:
        pass


class AlsaPlayer:
    """Writes prompts to an ALSA PCM (``device``) from a playback thread."""

    def __init__(self, device: str, volume: int, problems: OnceLog | None = None) -> None:
        self.device = device
        self.volume = volume
        self.first_write: float | None = None
        self.problems = problems or OnceLog()
        self._files: tuple[Path, ...] | None = None
        self._generation = 0
        self._closed = False
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="voice-player", daemon=True)
        self._thread.start()

    # --- any thread (the UI's) -------------------------------------------------
    def play(self, files: Sequence[Path]) -> None:
        with self._wake:
            self._generation += 1
            self._files = tuple(files)
            self._wake.notify()

    def stop(self) -> None:
        with self._wake:
            self._generation += 1
            self._files = None

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._generation += 1
            self._wake.notify()
        self._thread.join(timeout=2)

    # --- the playback thread ------------------------------------------------------
    def _run(self) -> None:
        pcm: Any = None
        shape: tuple[int, int] | None = None
        while True:
            with self._wake:
                while self._files is None and not self._closed:
                    if pcm is None:
                        self._wake.wait()
                    elif not self._wake.wait(RELEASE_AFTER_SECONDS):
                        # Said and heard: the device is free for others (the chime).
                        _close(pcm)
                        pcm = None
                if self._closed:
                    break
                files, generation, self._files = self._files or (), self._generation, None
            first = True
            for path in files:
                clip = self._load(path)
                if clip is None:
                    continue
                rate, channels, frames = clip[0], clip[1], scaled(clip[2], self.volume)
                if pcm is None or shape != (rate, channels):
                    _close(pcm)
                    pcm, shape = self._open(rate, channels), (rate, channels)
                if pcm is None:
                    break
                done = self._write(pcm, frames, channels, generation, first)
                first = False
                if not done:  # interrupted: what ALSA still holds is dropped
                    _close(pcm, drop=True)
                    pcm = None
                    break
        _close(pcm)

    def _load(self, path: Path) -> tuple[int, int, bytes] | None:
        try:
            return read_wav(path)
        except (OSError, EOFError, wave.Error) as exc:
            self.problems.warning(
                "missing_audio",
                "voice: an audio file is missing or unreadable; that prompt stays silent"
                " (run `python -m kiosk voice build`)",
                file=path.name,
                error=str(exc),
            )
            return None

    def _open(self, rate: int, channels: int) -> Any:
        try:
            import alsaaudio  # the device library only where sound is played

            return alsaaudio.PCM(
                type=alsaaudio.PCM_PLAYBACK,
                mode=alsaaudio.PCM_NORMAL,
                device=self.device,
                channels=channels,
                rate=rate,
                format=alsaaudio.PCM_FORMAT_S16_LE,
                periodsize=PERIOD_FRAMES,
            )
        except Exception as exc:  # ImportError or alsaaudio.ALSAAudioError
            self.problems.warning(
                "no_device",
                "voice: the sound device cannot be opened; the kiosk stays silent",
                device=self.device,
                error=str(exc),
            )
            return None

    def _write(self, pcm: Any, frames: bytes, channels: int, generation: int, first: bool) -> bool:
        """Write period by period; False once a newer prompt or stop came
        (or the device failed)."""
        step = PERIOD_FRAMES * 2 * channels
        for start in range(0, len(frames), step):
            if self._generation != generation:
                return False
            try:
                pcm.write(frames[start : start + step])
            except Exception as exc:  # alsaaudio.ALSAAudioError: unplugged, suspended
                self.problems.warning(
                    "write_failed", "voice: writing to the sound device failed", error=str(exc)
                )
                return False
            if first:
                self.first_write, first = time.monotonic(), False
        return True


def _close(pcm: Any, drop: bool = False) -> None:
    if pcm is None:
        return
    try:
        if drop:
            pcm.drop()
        pcm.close()
    except Exception as exc:  # the device went away meanwhile: nothing to release
        log.debug("voice: closing the device failed: %s", exc)
