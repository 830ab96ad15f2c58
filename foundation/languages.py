"""The languages the product speaks: one registry for the touchscreens, the
booking site and its e-mails.

A language is offered where its catalogue exists (``Catalogues.languages``
keeps only registered codes), in the order of :data:`LANGUAGES`. Codes are
BCP 47 tags as the catalogue folders and the booking site's ``lang``
attribute use them; Babel reads the catalogue and formats dates with
``babel_locale``. To add a language: a row here, its catalogues, and a font
that covers its script (``docs/translation.md``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

DEFAULT_LANGUAGE = "ja"
# The message ids are English: an English catalogue only repeats them.
SOURCE_LANGUAGE = "en"

# Font families the touchscreens register (kiosk.touch.app.register_fonts),
# each a regular and a bold file of Debian's Noto packages.
FONT_CJK = "NotoSansCJK"
FONT_LATIN = "NotoSans"
# Annapurna SIL, not Noto Sans Devanagari: Nepali sentences carry Latin
# words (PIN, My Number) and Noto's Devanagari face has no Latin letters.
FONT_DEVANAGARI = "AnnapurnaSIL"
_CJK_DIR = Path("/usr/share/fonts/opentype/noto")  # fonts-noto-cjk
_CORE_DIR = Path("/usr/share/fonts/truetype/noto")  # fonts-noto-core
_ANNAPURNA_DIR = Path("/usr/share/fonts/truetype/annapurna")  # fonts-sil-annapurna
FONT_FILES: dict[str, tuple[Path, Path]] = {
    # A .ttc collection: Kivy and fontTools use its first face, the Japanese one.
    FONT_CJK: (_CJK_DIR / "NotoSansCJK-Regular.ttc", _CJK_DIR / "NotoSansCJK-Bold.ttc"),
    FONT_LATIN: (_CORE_DIR / "NotoSans-Regular.ttf", _CORE_DIR / "NotoSans-Bold.ttf"),
    FONT_DEVANAGARI: (
        _ANNAPURNA_DIR / "AnnapurnaSIL-Regular.ttf",
        _ANNAPURNA_DIR / "AnnapurnaSIL-Bold.ttf",
    ),
}


@dataclass(frozen=True)
class Language:
    code: str  # BCP 47, also the catalogue folder name
    name: str  # in the language itself, as the language choice shows it
    babel_locale: str  # what Babel reads the catalogue and formats dates with
    font: str  # a key of FONT_FILES
    # HarfBuzz script (ISO 15924) for scripts that need shaping (conjuncts,
    # vowel signs); empty: Kivy's default shaping is right for the script.
    script: str = ""
    # The speech voice: "ja" for the Japanese engine (Open JTalk), otherwise
    # an espeak-ng voice name; empty: no voice installed for the language.
    voice: str = ""


LANGUAGES: tuple[Language, ...] = (
    Language("ja", "日本語", "ja", FONT_CJK, voice="ja"),
    Language("ja-x-easy", "やさしい にほんご", "ja", FONT_CJK, voice="ja"),
    Language("en", "English", "en", FONT_LATIN, voice="en"),
    # Noto Sans CJK's first face is the Japanese one: Han characters of
    # Chinese and Korean use Japanese glyph shapes (readable, not native).
    Language("zh-Hans", "中文（简体）", "zh_Hans", FONT_CJK, voice="cmn"),
    Language("zh-Hant", "中文（繁體）", "zh_Hant", FONT_CJK, voice="cmn"),
    Language("ko", "한국어", "ko", FONT_CJK, voice="ko"),
    Language("vi", "Tiếng Việt", "vi", FONT_LATIN, voice="vi"),
    Language("pt-BR", "Português (Brasil)", "pt_BR", FONT_LATIN, voice="pt-br"),
    # espeak-ng has no Filipino/Tagalog voice (checked with --voices).
    Language("fil", "Filipino", "fil", FONT_LATIN, voice=""),
    Language("id", "Bahasa Indonesia", "id", FONT_LATIN, voice="id"),
    Language("ne", "नेपाली", "ne", FONT_DEVANAGARI, script="Deva", voice="ne"),
    Language("es", "Español", "es", FONT_LATIN, voice="es"),
)
BY_CODE: dict[str, Language] = {language.code: language for language in LANGUAGES}

# Accept-Language tags (lower case) that name a registered language another way.
ALIASES = {
    "zh": "zh-Hans",
    "zh-cn": "zh-Hans",
    "zh-sg": "zh-Hans",
    "zh-hans": "zh-Hans",
    "zh-tw": "zh-Hant",
    "zh-hk": "zh-Hant",
    "zh-mo": "zh-Hant",
    "zh-hant": "zh-Hant",
    "pt": "pt-BR",
    "pt-pt": "pt-BR",
    "tl": "fil",
    "in": "id",  # the withdrawn ISO 639 code some old systems still send
}


def language(code: str) -> Language:
    """The registered language ``code``; the default one for an unknown code."""
    return BY_CODE.get(code, BY_CODE[DEFAULT_LANGUAGE])


def babel_locale(code: str) -> str:
    return language(code).babel_locale


def match(tag: str) -> str | None:
    """The registered code a language tag means (case-insensitive; a region
    or script the registry does not know falls back to the bare language),
    or None."""
    tag = tag.strip().replace("_", "-").lower()
    lowered = {code.lower(): code for code in BY_CODE}
    while tag:
        if tag in lowered:
            return lowered[tag]
        if tag in ALIASES:
            return ALIASES[tag]
        tag = tag.rpartition("-")[0]
    return None


def ordered(codes: Iterable[str]) -> list[str]:
    """The registered codes among ``codes``, in the registry's order."""
    present = set(codes)
    return [entry.code for entry in LANGUAGES if entry.code in present]
