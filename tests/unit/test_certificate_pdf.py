"""Certificate PDF rendering: Japanese text embedded and extractable, issue
number and type present, the 12-digit number refused."""

from __future__ import annotations

from datetime import date
from io import BytesIO

import pytest
from pypdf import PdfReader

from central.issuance.pdf import CertificateDocument, CertificateRenderError, render_certificate


def doc(*lines: str) -> CertificateDocument:
    return CertificateDocument(
        kind_label="住民票の写し", issue_number="2026-000123", issued_on=date(2026, 11, 28),
        municipality="テスト市", lines=list(lines),
    )  # fmt: skip


def test_certificate_pdf_has_type_number_and_japanese_text() -> None:
    pdf = render_certificate(doc("世帯主 テスト 太郎", "住所 テスト市中央1-2-3"))
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(BytesIO(pdf))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    for expected in ("住民票の写し", "2026-000123", "テスト市長", "世帯主"):
        assert expected in text
    assert b"IPAexGothic" in pdf  # the Japanese font is embedded (as a subset)
    assert b"Helvetica" not in pdf  # and no other font rides along unused


def test_certificate_pdf_refuses_a_twelve_digit_number() -> None:
    with pytest.raises(CertificateRenderError):
        render_certificate(doc("個人番号 1234 5678 9012"))


def test_certificate_pdf_is_deterministic() -> None:
    assert render_certificate(doc("a")) == render_certificate(doc("a"))
