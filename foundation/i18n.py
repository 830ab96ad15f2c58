"""gettext catalogues from ``.po`` files, compiled in memory with Babel.

Shared by the kiosk (screens) and central (booking site, dashboard): a
language is a ``<locale_dir>/<code>/LC_MESSAGES/<domain>.po`` file, ``code``
one of :mod:`foundation.languages`; no build step.

A message missing, empty or fuzzy in the chosen language falls back to the
default language's text (Japanese), not to the English message id: a person
at a Japanese kiosk is more likely to read Japanese than English -- where the
language's font can draw Japanese. A language drawn in another font (Latin
scripts, Nepali) falls back to English instead: the touchscreens have no font
fallback, and Japanese in a Latin font would show as empty boxes. The first
fallback of each (language, domain) logs one warning; ``deploy doctor`` lists
incomplete catalogues (:meth:`Catalogues.missing`). The English catalogue may
leave messages out: its message ids are English already.
"""

from __future__ import annotations

import functools
import gettext
import io
import logging
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from foundation.languages import BY_CODE, SOURCE_LANGUAGE, babel_locale, ordered

log = logging.getLogger(__name__)
# (locale_dir, domain, language) already reported as falling back.
_reported: set[tuple[str, str, str]] = set()


class Catalogues:
    def __init__(self, locale_dir: Path, domain: str, default: str) -> None:
        self.locale_dir = locale_dir
        self.domain = domain
        self.default = default
        self._chained: dict[str, gettext.NullTranslations] = {}

    def po_file(self, language: str) -> Path:
        return self.locale_dir / language / "LC_MESSAGES" / f"{self.domain}.po"

    def languages(self) -> list[str]:
        """Registered languages with a catalogue, in the registry's order
        (the default first)."""
        found = [e.name for e in self.locale_dir.iterdir() if self.po_file(e.name).is_file()]
        return ordered(found)

    def get(self, language: str) -> gettext.NullTranslations:
        """``language``'s translations; what it lacks comes from the default
        language (English for the default itself and for English)."""
        if language in (self.default, SOURCE_LANGUAGE):
            return _shared(self.po_file(language), babel_locale(language), self.domain)
        if language not in self._chained:
            chained = _new_translations(
                _compiled_mo(self.po_file(language), babel_locale(language))
            )
            chained.add_fallback(_Fallback(self, language))
            self._chained[language] = chained
        return self._chained[language]

    def translate(self, language: str, message: str, **values: object) -> str:
        text = self.get(language).gettext(message)
        return text.format(**values) if values else text

    def own(self, language: str, message: str) -> str | None:
        """``message`` as ``language``'s own catalogue translates it, or None
        (no fallback: for text shown beside the Japanese one)."""
        if message not in _translated(_read(self.po_file(language), babel_locale(language))):
            return None
        return _shared(self.po_file(language), babel_locale(language), self.domain).gettext(message)

    def missing(self, language: str) -> list[str]:
        """Message ids of the default catalogue that ``language`` lacks or
        leaves empty or fuzzy (all of them when it has no catalogue)."""
        source = _translated(_read(self.po_file(self.default), babel_locale(self.default)))
        own = _translated(_read(self.po_file(language), babel_locale(language)))
        return sorted(source - own)


class _Fallback(gettext.NullTranslations):
    """The default language's text, reported once per (language, domain)."""

    def __init__(self, catalogues: Catalogues, language: str) -> None:
        super().__init__()
        self.catalogues = catalogues
        self.language = language
        self.fallback = fallback_language(language, catalogues.default)

    def gettext(self, message: str) -> str:
        key = (str(self.catalogues.locale_dir), self.catalogues.domain, self.language)
        if key not in _reported:
            _reported.add(key)
            log.warning(
                "translation missing, showing the default language",
                extra={
                    "language": self.language,
                    "domain": self.catalogues.domain,
                    "fallback": self.fallback,
                    "message_id": message,
                },
            )
        return self.catalogues.get(self.fallback).gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.catalogues.get(self.fallback).ngettext(singular, plural, n)


def fallback_language(language: str, default: str) -> str:
    """Where ``language``'s missing messages come from: ``default`` when the
    two are drawn in the same font, else English (the message ids)."""
    own, fallback = BY_CODE.get(language), BY_CODE.get(default)
    if own is None or fallback is None or own.font == fallback.font:
        return default
    return SOURCE_LANGUAGE


def _translated(catalog: Catalog | None) -> set[str]:
    """Ids of the messages with a usable translation (not empty, not fuzzy)."""
    if catalog is None:
        return set()
    return {str(m.id) for m in catalog if m.id and _usable(m.string) and not m.fuzzy}


def _usable(string: object) -> bool:
    if isinstance(string, (tuple, list)):
        return all(string)
    return bool(string)


@functools.cache
def _read(po: Path, locale: str) -> Catalog | None:
    if not po.is_file():
        return None
    with po.open("rb") as source:
        return read_po(source, locale=locale)


@functools.cache
def _compiled_mo(po: Path, locale: str) -> bytes | None:
    if not po.is_file():
        return None
    with po.open("rb") as source:
        catalog = read_po(source, locale=locale)  # a copy of its own: entries are dropped
    # Without its empty and fuzzy entries, so that gettext falls back for them.
    for message in list(catalog):
        if message.id and (not _usable(message.string) or message.fuzzy):
            catalog.delete(message.id, message.context)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    return compiled.getvalue()


@functools.cache
def _shared(po: Path, locale: str, domain: str) -> gettext.NullTranslations:
    return _new_translations(_compiled_mo(po, locale))


def _new_translations(mo: bytes | None) -> gettext.NullTranslations:
    return gettext.NullTranslations() if mo is None else gettext.GNUTranslations(io.BytesIO(mo))
