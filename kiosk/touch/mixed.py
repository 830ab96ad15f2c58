"""Text that mixes the person's script with Japanese, as Kivy markup.

Kivy 2.3 has no font fallback: a Japanese room or facility name inside an
English, Vietnamese or Nepali sentence would show as boxes in the Latin or
Devanagari font. :func:`mixed_markup` wraps each run of CJK characters (and
the symbols only the CJK font has) in ``[font=NotoSansCJK]``; labels showing
it set ``markup: True``. Pure: no Kivy import.
"""

from __future__ import annotations

import re

from foundation.languages import FONT_CJK, FONT_LATIN, language

# Code point ranges only the CJK font covers among ours (docs/translation.md).
_CJK_RANGES = (
    (0x2E80, 0x9FFF),  # radicals, CJK symbols and punctuation, kana, Han
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xF900, 0xFAFF),  # compatibility ideographs
    (0xFF00, 0xFFEF),  # full-width forms
    (0x20000, 0x3FFFF),  # Han extensions
    (0x25A0, 0x25FF),  # geometric shapes (● ○)
    (0x2713, 0x2713),  # ✓
)


# Kivy markup tags: what :func:`plain` removes.
_MARKUP_TAG = re.compile(
    r"\[/?(?:b|i|u|s|sub|sup|font|size|color|ref|anchor|font_family|font_context"
    r"|font_features|text_language)(?:=[^\]]*)?\]"
)


def plain(markup: str) -> str:
    """The words of a markup text as shown: tags removed, escapes undone
    (for measuring a word, or saying a button's label)."""
    text = _MARKUP_TAG.sub("", markup)
    return text.replace("&bl;", "[").replace("&br;", "]").replace("&amp;", "&")


def is_cjk(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _CJK_RANGES)


def escape(text: str) -> str:
    """Kivy's markup escapes (as kivy.utils.escape_markup)."""
    return text.replace("&", "&amp;").replace("[", "&bl;").replace("]", "&br;")


def mixed_markup(text: str, font: str) -> str:
    """``text`` as markup for a label in ``font``: CJK runs in the CJK font
    unless ``font`` is the CJK font already."""
    if font == FONT_CJK or not any(is_cjk(c) for c in text):
        return escape(text)
    parts: list[str] = []
    run, in_cjk = "", False
    for char in text:
        # Spaces stay with the run they are in, so a name keeps one font.
        cjk = in_cjk if char.isspace() else is_cjk(char)
        if cjk != in_cjk and run:
            parts.append(f"[font={FONT_CJK}]{escape(run)}[/font]" if in_cjk else escape(run))
            run = ""
        run, in_cjk = run + char, cjk
    if run:
        parts.append(f"[font={FONT_CJK}]{escape(run)}[/font]" if in_cjk else escape(run))
    return "".join(parts)


def font_for(code: str) -> tuple[str, str]:
    """The font family and HarfBuzz script (Kivy's default ``Latn`` where the
    script needs no shaping) for language ``code``."""
    entry = language(code)
    return entry.font, entry.script or "Latn"


def beside(japanese: str, translation: str, english: bool = False) -> str:
    """Markup for a name that keeps its Japanese form (a certificate's title
    on paper): the Japanese in the CJK font, the translation beside it in
    the label's own font or, when it is an English fallback (``english``),
    in the Latin font (so it looks the same in every language)."""
    if not translation:
        return f"[font={FONT_CJK}]{escape(japanese)}[/font]"
    other = escape(translation)
    if english:
        other = f"[font={FONT_LATIN}]{other}[/font]"
    return f"[font={FONT_CJK}]{escape(japanese)}（[/font]{other}[font={FONT_CJK}]）[/font]"


def latin(text: str, english: bool) -> str:
    """Markup for central's text: escaped, and in the Latin font when it is
    an English fallback (``english``) shown in another language's font."""
    return f"[font={FONT_LATIN}]{escape(text)}[/font]" if english else escape(text)
