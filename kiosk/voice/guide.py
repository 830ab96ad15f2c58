"""The voice guide: what the app calls on its UI thread when a screen
changes, and the background work behind it.

:meth:`VoiceGuide.show` is called after every change of the screen's view;
it speaks the screen's prompt when the screen or the language changed, only
the new sentences when the same screen shows new words (a wrong PIN, a card
notice, the next waiting step), the PIN count in words when only that
changed, and nothing on a clock tick.
A sentence missing from the cache is synthesised on a worker thread, and the
prompt is spoken only if nothing else was asked for meanwhile (the person is
still on that screen); the UI thread never waits for a synthesiser.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path

from kiosk.voice.cache import AudioCache
from kiosk.voice.errors import SynthesisFailed
from kiosk.voice.player import OnceLog, Player
from kiosk.voice.prompts import Prompt, Reader, ScreenSpeech, count_of, count_words, prompt_for
from kiosk.voice.synth import Synthesiser
from kiosk.voice.voices import VoiceSet

log = logging.getLogger(__name__)
# A keypad announcement this soon after a screen's prompt started follows it.
FOLLOW_PROMPT_SECONDS = 2.0

Post = Callable[[Callable[[], None]], None]


def _now(call: Callable[[], None]) -> None:
    call()


class VoiceGuide:
    def __init__(
        self,
        voices: VoiceSet,
        cache: AudioCache,
        player: Player,
        executor: Executor | None = None,
        problems: OnceLog | None = None,
    ) -> None:
        self.voices = voices
        self.cache = cache
        self.player = player
        self.problems = problems or OnceLog()
        self.post: Post = _now  # the app sets its UI-thread hand-over
        self._executor = executor or ThreadPoolExecutor(1, thread_name_prefix="voice-synth")
        # The start-up build has its own thread: a prompt never queues behind it.
        self._background: ThreadPoolExecutor | None = None
        self._closed = threading.Event()
        self._token = 0
        self._shown: tuple[str, str] | None = None
        self._count: int | None = None
        self._last: Prompt | None = None
        self._choices: tuple[tuple[str, str], ...] = ()
        self._prompt_started = float("-inf")

    # --- the UI thread ---------------------------------------------------------
    def show(
        self,
        table: Mapping[str, ScreenSpeech],
        screen: str,
        language: str,
        read: Reader,
        choices: Sequence[tuple[str, str]] = (),
    ) -> None:
        """The view changed: speak what is new on the screen. ``choices``
        (language, text) follow the prompt, each in its own voice (the
        language screen's buttons, each language's name in itself)."""
        prompt = prompt_for(table, screen, language, read)
        if prompt is None:
            return
        count = count_of(table, screen, read)
        counted = count_words(language, count) if count else ""
        said = self._last.sentences if self._last is not None else ()
        new = [s for s in prompt.sentences if s not in said and s != counted]
        changed_count = count is not None and count != self._count
        self._count, self._last, self._choices = count, prompt, tuple(choices)
        if (prompt.key, language) != self._shown:
            self._shown = (prompt.key, language)
            self._speak(language, prompt.sentences, self._choices)
            self._prompt_started = time.monotonic()
        elif new:  # e.g. "Wrong PIN", a card notice, the next waiting step
            self._speak(language, new)
        elif changed_count:
            self._speak(language, (counted or count_words(language, 0),))

    def read_again(self) -> None:
        """The "read again" button: the whole prompt of the current screen."""
        if self._last is not None:
            self._speak(self._last.language, self._last.sentences, self._choices)

    def say(self, text: str, language: str) -> None:
        """Speak one text (the tactile keypad's focus changes): after the
        screen's prompt when that has only just started (the focus a new
        screen opens on), else at once, cutting off what was playing."""
        fresh = time.monotonic() - self._prompt_started < FOLLOW_PROMPT_SECONDS
        self._prompt_started = float("-inf")
        if fresh and self._last is not None:
            self._speak(self._last.language, (*self._last.sentences, text), self._choices)
        else:
            self._speak(language, (text,))

    def prepare(self, jobs: Callable[[], Iterable[tuple[str, str]]], after: float = 0.0) -> None:
        """Synthesise the missing (language, text) entries that ``jobs``
        lists, all in the background (listing them reads every catalogue),
        starting ``after`` seconds from now (the UI starts first)."""
        if self._background is None:
            self._background = ThreadPoolExecutor(1, thread_name_prefix="voice-prepare")
        self._background.submit(self._prepare, jobs, after)

    def close(self) -> None:
        self._token += 1
        self._closed.set()
        self.player.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._background is not None:
            self._background.shutdown(wait=False, cancel_futures=True)

    # --- internals ---------------------------------------------------------------
    def _speak(
        self, language: str, sentences: Sequence[str], others: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Say ``sentences`` in ``language``, then each (language, text) of
        ``others`` in its own voice; what is not cached is made first, off
        this thread."""
        self._token += 1
        parts = [(language, s) for s in sentences] + list(others)
        jobs: list[tuple[Synthesiser, str]] = []
        for lang, text in parts:
            synth = self.voices.for_language(lang)
            if synth is None:
                self.problems.warning("no_synth", "voice: no synthesiser", language=lang)
            else:
                jobs.append((synth, text))
        if not jobs:
            self.player.stop()
            return
        files = [self.cache.path(synth.voice_id, text) for synth, text in jobs]
        if all(self.cache.has(synth.voice_id, text) for synth, text in jobs):
            self.player.play(files)
            return
        self.player.stop()
        self._executor.submit(self._synthesise, self._token, jobs, files)

    def _synthesise(
        self, token: int, jobs: list[tuple[Synthesiser, str]], files: list[Path]
    ) -> None:
        """Worker thread: make the missing files, then hand back to the UI."""
        if token != self._token:
            return
        made: list[Path] = []
        for (synth, text), path in zip(jobs, files, strict=True):
            try:
                self.cache.ensure(synth, text)
                made.append(path)
            except SynthesisFailed as exc:
                self.problems.warning(
                    "synthesis_failed", "voice: synthesis failed", error=str(exc),
                    voice=synth.voice_id,
                )  # fmt: skip
        self.post(lambda: self._play_if_current(token, made))

    def _play_if_current(self, token: int, files: list[Path]) -> None:
        if token == self._token and files:
            self.player.play(files)

    def _prepare(self, jobs: Callable[[], Iterable[tuple[str, str]]], after: float) -> None:
        if self._closed.wait(after):
            return
        for language, text in jobs():
            if self._closed.is_set():
                return
            synth = self.voices.for_language(language)
            if synth is None:
                continue
            try:
                self.cache.ensure(synth, text)
            except SynthesisFailed as exc:
                self.problems.warning("prepare_failed", "voice: synthesis failed", error=str(exc))
