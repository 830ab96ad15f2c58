"""gettext catalogues from ``.po`` files, compiled in memory with Babel.

Shared by the kiosk (screens) and central (dashboard): a language is a
``<locale_dir>/<lang>/LC_MESSAGES/<domain>.po`` file; no build step. A missing
catalogue or message falls back to the message id (English).
"""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po


class Catalogues:
    def __init__(self, locale_dir: Path, domain: str, default: str) -> None:
        self.locale_dir = locale_dir
        self.domain = domain
        self.default = default

    def po_file(self, language: str) -> Path:
        return self.locale_dir / language / "LC_MESSAGES" / f"{self.domain}.po"

    def languages(self) -> list[str]:
        """Languages with a catalogue, the default first."""
        found = [e.name for e in self.locale_dir.iterdir() if self.po_file(e.name).is_file()]
        return sorted(found, key=lambda lang: (lang != self.default, lang))

    def get(self, language: str) -> gettext.NullTranslations:
        return _compiled(self.po_file(language), language, self.domain)

    def translate(self, language: str, message: str, **values: object) -> str:
        text = self.get(language).gettext(message)
        return text.format(**values) if values else text


@functools.cache
def _compiled(po: Path, language: str, domain: str) -> gettext.NullTranslations:
    if not po.is_file():
        return gettext.NullTranslations()
    with po.open("rb") as source:
        catalog = read_po(source, locale=language, domain=domain)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)
