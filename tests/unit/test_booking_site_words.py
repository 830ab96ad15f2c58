"""The booking site's words: every message the templates and the code show
has a Japanese translation, with the same placeholders; every key of the
``[booking]`` section is documented in docs/central.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from central.booking.i18n import CLOSURE_KINDS, SITE_MESSAGES
from central.booking.settings import BookingSection, SmtpSection
from central.reservations.rules import REFUSAL_MESSAGES

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "central" / "booking"
CALLS = re.compile(r"""(?:\b_|\bwords)\(\s*(["'])((?:(?!\1).)+)\1""")


def used_messages() -> set[str]:
    found = set(REFUSAL_MESSAGES.values()) | set(SITE_MESSAGES.values())
    found |= set(CLOSURE_KINDS.values())
    for file in [*SITE.glob("templates/*.html"), *SITE.glob("*.py")]:
        found |= {m[1] for m in CALLS.findall(file.read_text(encoding="utf-8"))}
    return found


def test_words_every_message_has_a_japanese_translation() -> None:
    with (SITE / "locale" / "ja" / "LC_MESSAGES" / "booking.po").open("rb") as po:
        catalogue = {m.id: m.string for m in read_po(po) if m.id}
    used = used_messages()
    assert len(used) > 100
    missing = sorted(m for m in used if not catalogue.get(m))
    assert not missing, missing
    for message in used:
        assert set(re.findall(r"{\w+}", message)) == set(
            re.findall(r"{\w+}", str(catalogue[message]))
        )


def test_words_every_booking_key_is_documented() -> None:
    page = (ROOT / "docs" / "central.md").read_text(encoding="utf-8")
    for key in BookingSection.model_fields:
        if key != "smtp":
            assert f"`booking.{key}`" in page, key
    for key in SmtpSection.model_fields:
        assert f"`.{key}`" in page or f"`booking.smtp.{key}`" in page, key
