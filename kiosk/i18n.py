"""Translations: gettext catalogues (``kiosk/locale/<lang>/LC_MESSAGES/kiosk.po``)
read with Babel and compiled in memory at start, so a new language is data:
add a ``.po`` file (``pybabel init``), translate, restart.

Message ids are English. A language without a catalogue, or a message missing
from one, falls back to English rather than showing nothing.
"""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

DOMAIN = "kiosk"
DEFAULT_LANGUAGE = "ja"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


def _po_file(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def available_languages() -> list[str]:
    """Languages with a catalogue, Japanese first."""
    found = [entry.name for entry in LOCALE_DIR.iterdir() if _po_file(entry.name).is_file()]
    return sorted(found, key=lambda lang: (lang != DEFAULT_LANGUAGE, lang))


@functools.cache
def translations(language: str) -> gettext.NullTranslations:
    po = _po_file(language)
    if not po.is_file():
        return gettext.NullTranslations()
    with po.open("rb") as source:
        catalog = read_po(source, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def translate(language: str, message: str, **values: object) -> str:
    """``message`` in ``language``, with ``{name}`` placeholders filled in."""
    text = translations(language).gettext(message)
    return text.format(**values) if values else text
