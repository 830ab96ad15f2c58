"""Certificate PDFs for issuance: A4, Japanese fonts embedded, an issue
number and date, the municipality, and a copy-deterrent background.

The content comes from the registry adapter as lines of text; this
module only lays them out. It never receives, and so never prints, the
12-digit individual number: ``render_certificate`` refuses any line that
contains one (defence in depth, as for events).

Font: IPAex Gothic (Debian ``fonts-ipaexfont-gothic``, TrueType, embedded
as a subset); reportlab cannot embed the CFF-based Noto CJK files.
"""

from __future__ import annotations

import contextlib
import functools
import io
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from reportlab import rl_config
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from foundation.logs import twelve_digit_spans

FONT_PATH = Path("/usr/share/fonts/truetype/fonts-japanese-gothic.ttf")
FONT_CANDIDATES = (
    Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf"),
    Path("/usr/share/fonts/truetype/ipaexfont-gothic/ipaexg.ttf"),
    FONT_PATH,
)
FONT_NAME = "IPAexGothic"
# Streams compressed only, not also ASCII85-encoded: reportlab's encoder is
# pure Python here and took a quarter of each rendering; binary streams are
# valid PDF and a fifth smaller. Issuance is central's only reportlab user.
rl_config.useA85 = 0


class CertificateRenderError(ValueError):
    """The certificate cannot be rendered as given (no font, forbidden content)."""


@dataclass(frozen=True)
class CertificateDocument:
    kind_label: str  # e.g. 住民票の写し
    issue_number: str
    issued_on: date
    municipality: str
    lines: list[str] = field(default_factory=list)
    copies_note: str = "この写しは、住民票の原本と相違ないことを証明する。"


def _font() -> str:
    if FONT_NAME in pdfmetrics.getRegisteredFontNames():
        return FONT_NAME
    for path in FONT_CANDIDATES:
        if path.exists():
            # Not "ASCII readable": reportlab would otherwise put all 96 ASCII
            # glyphs into every PDF, used or not (a third of the rendering
            # and of the file); the text stays extractable (ToUnicode map).
            font = TTFont(FONT_NAME, str(path), asciiReadable=False)
            # reportlab copies each table it embeds out of the font file at
            # every save, the whole 5.6 MB glyph table among them; the file
            # never changes, so each table is copied once per process.
            font.face.get_table = functools.cache(font.face.get_table)
            pdfmetrics.registerFont(font)
            return FONT_NAME
    raise CertificateRenderError("no Japanese font: install fonts-ipaexfont-gothic")


def load_font() -> None:
    """Register the font now (about 0.3 s of parsing), so the first
    resident's confirmation does not wait for it; a missing font is
    reported by the first rendering as before."""
    with contextlib.suppress(CertificateRenderError):
        _font()


def render_certificate(doc: CertificateDocument) -> bytes:
    """The PDF bytes of one certificate."""
    for line in [doc.kind_label, doc.municipality, *doc.lines]:
        if twelve_digit_spans(line):
            raise CertificateRenderError("a 12-digit number must never be printed on a certificate")
    font = _font()
    out = io.BytesIO()
    # Starting in our font keeps reportlab from adding Helvetica, unused.
    canvas = Canvas(out, pagesize=A4, invariant=True, initialFontName=font, initialFontSize=12)
    canvas.setTitle(f"{doc.kind_label} {doc.issue_number}")
    width, height = A4
    _background(canvas, font, width, height)
    canvas.setFillColorRGB(0, 0, 0)
    canvas.setFont(font, 22)
    canvas.drawCentredString(width / 2, height - 40 * mm, doc.kind_label)
    canvas.setFont(font, 10)
    canvas.drawRightString(width - 20 * mm, height - 20 * mm, f"交付番号 {doc.issue_number}")
    canvas.drawRightString(
        width - 20 * mm, height - 26 * mm, f"交付日 {doc.issued_on:%Y年%m月%d日}"
    )
    canvas.setFont(font, 12)
    y = height - 60 * mm
    for line in doc.lines:
        canvas.drawString(25 * mm, y, line)
        y -= 8 * mm
    canvas.setFont(font, 11)
    canvas.drawString(25 * mm, 60 * mm, doc.copies_note)
    canvas.drawString(25 * mm, 50 * mm, f"{doc.issued_on:%Y年%m月%d日}")
    canvas.setFont(font, 14)
    canvas.drawString(110 * mm, 40 * mm, f"{doc.municipality}長")
    canvas.showPage()
    canvas.save()
    return out.getvalue()


def _background(canvas: Canvas, font: str, width: float, height: float) -> None:
    """A light repeated word that shows up on a photocopy (copy deterrent).

    Two rows of the pattern (the second shifted by half a step) are drawn
    once as a form XObject and placed down the page: the same page as
    drawing each of the ~480 words, at a fifth of the rendering time (the
    words were most of it). Each row is one string, the words spaced by
    ideographic spaces (a word and five spaces: 7 em at 9 pt = 63 pt), as
    reportlab's cost is per string, not per glyph. Each placement moves
    on from the last inside one saved state, rather than saving and
    restoring the state around each (about a quarter of this pattern's
    cost).
    """
    step, pitch = 63, 18  # 7 em of 9 pt
    canvas.beginForm("copy-deterrent")
    canvas.setFillColorRGB(0.85, 0.85, 0.85)
    canvas.setFont(font, 9)
    row_text = ("複製" + "\u3000" * 5) * (int(width) // step + 2)
    canvas.drawString(0, 0, row_text)
    canvas.drawString(-step / 2, pitch, row_text)
    canvas.endForm()
    canvas.saveState()
    canvas.doForm("copy-deterrent")
    for _ in range(2 * pitch, int(height), 2 * pitch):
        canvas.translate(0, 2 * pitch)
        canvas.doForm("copy-deterrent")
    canvas.restoreState()
