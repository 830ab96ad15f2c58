"""Which synthesiser speaks which language (from ``[voice]``).

Japanese and やさしい日本語 (``ja-x-easy``, a little slower) use Open JTalk
with the HTS voice shipped in the pinned ``pyopenjtalk-plus`` package (Debian
12 packages Open JTalk and its dictionary but no voice); every other language
uses an eSpeak NG voice. eSpeak NG 1.51 has no Filipino voice: ``fil`` is
read by the Indonesian voice (close vowels and spelling-to-sound rules),
until ``[voice] espeak_voices`` names a better one. Traditional Chinese is
read in Mandarin (``cmn``), as most readers of it in Japan come from Taiwan.
If Open JTalk cannot be used, Japanese falls back to eSpeak NG's ``ja``
voice (last resort, logged once).
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from kiosk.voice.synth import EspeakSynth, JTalkSynth, Synthesiser
from sync.config import VoiceSection

log = logging.getLogger(__name__)

JAPANESE = ("ja", "ja-x-easy")
EASY_JAPANESE_SPEED = 0.85
ESPEAK_VOICES = {
    "en": "en-us",
    "zh-Hans": "cmn",
    "zh-Hant": "cmn",
    "ko": "ko",
    "vi": "vi",
    "pt-BR": "pt-br",
    "fil": "id",
    "id": "id",
    "ne": "ne",
    "es": "es",
    "ja": "ja",
}
JTALK_VOICE_NAME = "mei_normal.htsvoice"


def packaged_jtalk_voice() -> Path | None:
    """The HTS voice in the installed ``pyopenjtalk`` package (found
    without importing it: its import is heavy and not needed)."""
    spec = importlib.util.find_spec("pyopenjtalk")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / "htsvoice" / JTALK_VOICE_NAME
        if candidate.is_file():
            return candidate
    return None


@dataclass
class VoiceSet:
    """Language -> synthesiser; ``problems`` says what is missing (doctor, logs)."""

    by_language: dict[str, Synthesiser] = field(default_factory=dict)
    fallback: Synthesiser | None = None
    problems: list[str] = field(default_factory=list)

    def for_language(self, language: str) -> Synthesiser | None:
        return self.by_language.get(language, self.fallback)


def espeak_voice(language: str, overrides: dict[str, str]) -> str:
    if language in overrides:
        return overrides[language]
    return ESPEAK_VOICES.get(language, language.split("-", maxsplit=1)[0].lower())


def voices_for(config: VoiceSection, languages: list[str]) -> VoiceSet:
    """The synthesiser of each language from ``config``."""
    voices = VoiceSet()
    espeak_ok = shutil.which(config.espeak_binary) is not None
    if not espeak_ok:
        voices.problems.append(f"eSpeak NG not found ({config.espeak_binary})")
    jtalk = _jtalk(config, voices.problems)
    for language in languages:
        if language in JAPANESE and jtalk is not None:
            speed = EASY_JAPANESE_SPEED if language == "ja-x-easy" else 1.0
            voices.by_language[language] = JTalkSynth(
                jtalk.voice_file, jtalk.dictionary, speed, jtalk.binary
            )
        elif espeak_ok:
            voice = espeak_voice(language, config.espeak_voices)
            voices.by_language[language] = EspeakSynth(voice, binary=config.espeak_binary)
    if espeak_ok:
        voices.fallback = EspeakSynth(
            espeak_voice("en", config.espeak_voices), binary=config.espeak_binary
        )
    for problem in voices.problems:
        log.warning("voice: %s", problem, extra={"problem": problem})
    return voices


def _jtalk(config: VoiceSection, problems: list[str]) -> JTalkSynth | None:
    voice_file = config.jtalk_voice or packaged_jtalk_voice()
    if shutil.which(config.jtalk_binary) is None:
        problems.append(f"Open JTalk not found ({config.jtalk_binary}): Japanese uses eSpeak NG")
    elif voice_file is None or not voice_file.is_file():
        problems.append(
            f"no Open JTalk voice ({voice_file or 'pyopenjtalk-plus not installed'}):"
            " Japanese uses eSpeak NG"
        )
    elif not config.jtalk_dictionary.is_dir():
        problems.append(f"no Open JTalk dictionary at {config.jtalk_dictionary}")
    else:
        return JTalkSynth(voice_file, config.jtalk_dictionary, binary=config.jtalk_binary)
    return None
