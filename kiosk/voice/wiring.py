"""The voice guide from a device configuration, and the list of everything
the cache should hold (``python -m kiosk voice build`` and the app's
start-up share it)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from kiosk.i18n import available_languages
from kiosk.voice.cache import AudioCache
from kiosk.voice.catalogue import texts_for
from kiosk.voice.guide import VoiceGuide
from kiosk.voice.player import AlsaPlayer, OnceLog, Player, SimulatedPlayer
from kiosk.voice.synth import Synthesiser
from kiosk.voice.voices import VoiceSet, voices_for
from sync.config import DeviceConfig

log = logging.getLogger(__name__)

# The start-up fill of the cache waits this long: the first screen comes first.
PREPARE_AFTER_SECONDS = 5.0


def known_values(config: DeviceConfig) -> dict[str, Sequence[object]]:
    """Placeholder values this device knows ahead: its rooms and unlock times."""
    rooms = [door.name or door.id for door in config.doors]
    default = config.lock.default_unlock_seconds
    seconds = {round(door.unlock_seconds or default) for door in config.doors}
    return {"room": rooms, "other": rooms, "seconds": sorted(seconds)}


def language_jobs(config: DeviceConfig, languages: Sequence[str]) -> list[tuple[str, str]]:
    """(language, text) for everything the screens may say that is known ahead."""
    values = known_values(config)
    return [(language, text) for language in languages for text in texts_for(language, values)]


def synth_jobs(voices: VoiceSet, jobs: Sequence[tuple[str, str]]) -> list[tuple[Synthesiser, str]]:
    found = [(voices.for_language(language), text) for language, text in jobs]
    return [(synth, text) for synth, text in found if synth is not None]


def player_for(config: DeviceConfig, problems: OnceLog) -> Player:
    if config.voice.output == "sim":
        return SimulatedPlayer()
    return AlsaPlayer(config.voice.device, config.voice.volume, problems)


def voice_for(
    config: DeviceConfig, player: Player | None = None, prepare: bool = True
) -> VoiceGuide | None:
    """The guide when ``[voice] enabled`` (else None). Loads the cache index
    (one directory listing) and, with ``prepare``, fills what is missing in
    the background."""
    if not config.voice.enabled:
        return None
    languages = available_languages()
    problems = OnceLog()
    voices = voices_for(config.voice, languages)
    cache = AudioCache(config.voice.cache_dir)
    present = cache.load_index()
    guide = VoiceGuide(voices, cache, player or player_for(config, problems), problems=problems)
    if prepare:
        guide.prepare(lambda: language_jobs(config, languages), after=PREPARE_AFTER_SECONDS)
    log.info("voice guidance on", extra={"cached_prompts": present, "languages": len(languages)})
    return guide
