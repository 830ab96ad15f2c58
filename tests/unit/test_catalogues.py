"""Every registered language, in both domains (kiosk screens, booking site
and mails): its catalogue exists, translates every message of the Japanese
catalogue (the complete source set), none fuzzy or empty, with the same
placeholders, and compiles; and the kiosk's text renders with the font the
registry gives the language (no "tofu" boxes).

These fail for a language whose catalogue is missing or incomplete: a
language listed in foundation/languages.py is a promise to the residents.
"""

from __future__ import annotations

import functools
import io
import re
import string
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from fontTools.ttLib import TTCollection, TTFont

from foundation.languages import (
    BY_CODE,
    DEFAULT_LANGUAGE,
    FONT_CJK,
    FONT_DEVANAGARI,
    FONT_FILES,
    FONT_LATIN,
    LANGUAGES,
)

ROOT = Path(__file__).resolve().parents[2]
LOCALES = {"kiosk": ROOT / "kiosk" / "locale", "booking": ROOT / "central" / "booking" / "locale"}
CODES = [language.code for language in LANGUAGES]
PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def po_path(domain: str, code: str) -> Path:
    return LOCALES[domain] / code / "LC_MESSAGES" / f"{domain}.po"


@functools.cache
def catalogue(domain: str, code: str) -> Catalog:
    with po_path(domain, code).open("rb") as source:
        return read_po(source, locale=BY_CODE[code].babel_locale, domain=domain)


def source_ids(domain: str) -> set[str]:
    return {str(m.id) for m in catalogue(domain, DEFAULT_LANGUAGE) if m.id}


def placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text))


def catalogue_problems(domain: str, code: str) -> list[str]:
    """What is wrong with one language's catalogue, one line per message."""
    found = catalogue(domain, code)
    problems = []
    for message_id in sorted(source_ids(domain)):
        message = found.get(message_id)
        if message is None:
            problems.append(f"missing: {message_id!r}")
        elif not message.string:
            problems.append(f"empty: {message_id!r}")
        elif message.fuzzy:
            problems.append(f"fuzzy: {message_id!r}")
        elif placeholders(str(message.string)) != placeholders(message_id):
            problems.append(f"placeholders differ: {message_id!r} -> {message.string!r}")
        else:
            try:
                list(string.Formatter().parse(str(message.string)))
            except ValueError as exc:
                problems.append(f"not a format string ({exc}): {message.string!r}")
    return problems


@pytest.mark.parametrize("domain", sorted(LOCALES))
@pytest.mark.parametrize("code", CODES)
def test_catalogue_complete(domain: str, code: str) -> None:
    assert po_path(domain, code).is_file(), f"{po_path(domain, code)} does not exist"
    problems = catalogue_problems(domain, code)
    assert not problems, f"{code}/{domain}.po: {len(problems)} problem(s):\n" + "\n".join(
        problems[:40]
    )
    write_mo(io.BytesIO(), catalogue(domain, code))  # compiles


def test_catalogue_source_set_is_the_japanese_one() -> None:
    # The Japanese catalogue is the complete one the others are checked
    # against: it must cover every message id the code marks with N_.
    ids = source_ids("kiosk")
    marked: set[str] = set()
    for module in (ROOT / "kiosk").rglob("*.py"):
        marked |= set(re.findall(r'N_\(\s*"((?:[^"\\]|\\.)*)"\s*\)', module.read_text()))
    assert len(marked) > 100
    assert marked - ids == set()
    assert len(source_ids("booking")) > 100


# --- fonts --------------------------------------------------------------


@functools.cache
def cmap(family: str) -> frozenset[int]:
    """The code points a font family's regular face has glyphs for (face 0
    of a collection: what Kivy uses)."""
    path = FONT_FILES[family][0]
    font = TTCollection(str(path)).fonts[0] if path.suffix == ".ttc" else TTFont(str(path))
    return frozenset(font.getBestCmap())


def tofu(texts: list[str], family: str) -> list[tuple[str, str]]:
    """(text, characters the font lacks) for each text that would show boxes;
    placeholders are left out (their values are digits and names)."""
    covered = cmap(family)
    found = []
    for text in texts:
        lacking = sorted(
            {c for c in PLACEHOLDER.sub("", text) if not c.isspace() and ord(c) not in covered}
        )
        if lacking:
            found.append((text, "".join(lacking)))
    return found


@pytest.mark.parametrize("code", CODES)
def test_catalogue_has_no_tofu_in_the_language_font(code: str) -> None:
    assert po_path("kiosk", code).is_file(), f"{po_path('kiosk', code)} does not exist"
    texts = [str(m.string) for m in catalogue("kiosk", code) if m.id and m.string]
    assert texts, f"{code} translates nothing"
    family = BY_CODE[code].font
    boxes = tofu([BY_CODE[code].name, *texts], family)
    assert not boxes, f"{code}: {family} lacks characters of {len(boxes)} text(s): {boxes[:10]}"


def test_tofu_check_reports_a_script_the_font_lacks() -> None:
    assert tofu(["नेपाली"], FONT_LATIN) == [("नेपाली", "".join(sorted(set("नपलाीे"))))]
    assert tofu(["住民票 {n}"], FONT_DEVANAGARI) == [("住民票 {n}", "住民票")]
    assert tofu(["Tiếng Việt {fee}", "नेपाली", "한국어"], FONT_CJK) == [
        ("नेपाली", "".join(sorted(set("नपलाीे"))))
    ]


def test_every_registered_font_is_installed() -> None:
    # fonts-noto-cjk and fonts-noto-core (scripts/bootstrap, the device role).
    for family, files in FONT_FILES.items():
        for path in files:
            assert path.is_file(), f"{family}: {path} is not installed"
