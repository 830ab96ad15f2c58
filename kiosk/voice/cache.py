"""The audio cache: one WAV file per (voice, text), named by a hash of the
synthesiser's ``voice_id`` (engine, version, voice, speed) and the text.

Loading the index is one directory listing (the UI starts fast with any
number of languages); files are written to a temporary name and renamed,
so a half-written file is never played. ``manifest.json`` lists the files a
complete cache has, for ``python -m deploy doctor`` (which imports no kiosk
code and only checks that they exist).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from kiosk.voice.errors import SynthesisFailed
from kiosk.voice.synth import Synthesiser

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SUFFIX = ".wav"


def cache_key(voice_id: str, text: str) -> str:
    return hashlib.sha256(f"{voice_id}\0{text}".encode()).hexdigest()[:32]


@dataclass
class BuildReport:
    made: int = 0
    present: int = 0
    failed: list[str] = field(default_factory=list)


class AudioCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._present: set[str] = set()
        self._lock = threading.Lock()

    def load_index(self) -> int:
        """Read which files exist (one directory listing); their count."""
        try:
            with os.scandir(self.root) as entries:
                names = {e.name[: -len(SUFFIX)] for e in entries if e.name.endswith(SUFFIX)}
        except FileNotFoundError:
            names = set()
        with self._lock:
            self._present = names
        return len(names)

    def path(self, voice_id: str, text: str) -> Path:
        return self.root / f"{cache_key(voice_id, text)}{SUFFIX}"

    def has(self, voice_id: str, text: str) -> bool:
        with self._lock:
            return cache_key(voice_id, text) in self._present

    def ensure(self, synth: Synthesiser, text: str) -> Path:
        """The file of ``text``, synthesised now when missing (never on the
        UI thread); raises :class:`SynthesisFailed`."""
        voice_id = synth.voice_id
        target = self.path(voice_id, text)
        if self.has(voice_id, text):
            return target
        self.root.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.stem}.{threading.get_ident()}.part")
        try:
            synth.synthesise(text, partial)
            if not partial.is_file() or partial.stat().st_size <= 44:
                raise SynthesisFailed(f"{voice_id} wrote no audio")
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        with self._lock:
            self._present.add(cache_key(voice_id, text))
        return target

    def build(self, jobs: Iterable[tuple[Synthesiser, str]], workers: int = 2) -> BuildReport:
        """Synthesise every missing (synthesiser, text), ``workers`` at a time."""
        report = BuildReport()
        todo: dict[str, tuple[Synthesiser, str]] = {}
        for synth, text in jobs:
            key = cache_key(synth.voice_id, text)
            if self.has(synth.voice_id, text):
                report.present += 1
            else:
                todo.setdefault(key, (synth, text))

        def one(job: tuple[Synthesiser, str]) -> str | None:
            try:
                self.ensure(*job)
            except SynthesisFailed as exc:
                return f"{job[0].voice_id}: {job[1]!r}: {exc}"
            return None

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for failure in pool.map(one, todo.values()):
                if failure is None:
                    report.made += 1
                else:
                    report.failed.append(failure)
        return report

    def write_manifest(self, jobs: Iterable[tuple[Synthesiser, str]]) -> Path:
        """Record which files a complete cache has (atomically)."""
        files = sorted({self.path(s.voice_id, t).name for s, t in jobs})
        voices = sorted({s.voice_id for s, _t in jobs})
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.root / MANIFEST
        partial = target.with_suffix(".part")
        partial.write_text(json.dumps({"voices": voices, "files": files}), encoding="utf-8")
        partial.replace(target)
        return target
