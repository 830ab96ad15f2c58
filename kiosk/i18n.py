"""Translations of the kiosk's screens: gettext catalogues
(``kiosk/locale/<lang>/LC_MESSAGES/kiosk.po``) compiled in memory at start
(:mod:`foundation.i18n`), so a new language is data: add a ``.po`` file
(``pybabel init``), translate, restart.

Message ids are English. The languages are those of
:mod:`foundation.languages` that have a catalogue; a message missing from one
shows in Japanese (logged once; ``deploy doctor`` lists it).
"""

from __future__ import annotations

import gettext
from pathlib import Path

from foundation import languages
from foundation.i18n import Catalogues

DOMAIN = "kiosk"
DEFAULT_LANGUAGE = languages.DEFAULT_LANGUAGE
CATALOGUES = Catalogues(Path(__file__).resolve().parent / "locale", DOMAIN, DEFAULT_LANGUAGE)


def available_languages() -> list[str]:
    """Registered languages with a catalogue, in the registry's order (Japanese first)."""
    return CATALOGUES.languages()


def translations(language: str) -> gettext.NullTranslations:
    return CATALOGUES.get(language)


def translate(language: str, message: str, **values: object) -> str:
    """``message`` in ``language``, with ``{name}`` placeholders filled in."""
    return CATALOGUES.translate(language, message, **values)


def own_translation(language: str, message: str) -> str | None:
    """``message`` in ``language``'s own catalogue, None when it lacks it."""
    return CATALOGUES.own(language, message)


def is_japanese(language: str) -> bool:
    """Japanese and やさしい日本語 (both read Japanese names as they are)."""
    return languages.babel_locale(language) == "ja"
