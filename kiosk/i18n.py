"""Translations of the kiosk's screens: gettext catalogues
(``kiosk/locale/<lang>/LC_MESSAGES/kiosk.po``) compiled in memory at start
(:mod:`foundation.i18n`), so a new language is data: add a ``.po`` file
(``pybabel init``), translate, restart.

Message ids are English. A language without a catalogue, or a message missing
from one, falls back to English rather than showing nothing.
"""

from __future__ import annotations

import gettext
from pathlib import Path

from foundation.i18n import Catalogues

DOMAIN = "kiosk"
DEFAULT_LANGUAGE = "ja"
CATALOGUES = Catalogues(Path(__file__).resolve().parent / "locale", DOMAIN, DEFAULT_LANGUAGE)


def available_languages() -> list[str]:
    """Languages with a catalogue, Japanese first."""
    return CATALOGUES.languages()


def translations(language: str) -> gettext.NullTranslations:
    return CATALOGUES.get(language)


def translate(language: str, message: str, **values: object) -> str:
    """``message`` in ``language``, with ``{name}`` placeholders filled in."""
    return CATALOGUES.translate(language, message, **values)
