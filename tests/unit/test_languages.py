"""The language registry, the catalogues' fallback to Japanese, the doctor's
translations check, the booking site's choice of language and the
certificate names shown beside the Japanese ones."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import pytest

import central.booking.i18n as booking_i18n
import kiosk.i18n
from central.issuance.config import _default_kinds
from contracts.issuance import KindOut
from deploy.checks import DoctorContext, Status
from deploy.checks.languages import check_translations, kiosk_locale_dir
from foundation.i18n import Catalogues
from foundation.languages import BY_CODE, LANGUAGES, match
from kiosk.issuance import texts as tx
from kiosk.issuance.flow import IssuanceFlow
from tests.unit.issuance_fakes import make_rig

CONTRACT = [
    "ja", "ja-x-easy", "en", "zh-Hans", "zh-Hant", "ko", "vi", "pt-BR", "fil", "id", "ne", "es",
]  # fmt: skip
RESIDENCE = KindOut(
    id="juminhyo", label_ja="住民票の写し", label_en="Certificate of residence",
    fee_yen=200, max_copies=5,
)  # fmt: skip


def write_po(root: Path, code: str, domain: str, entries: dict[str, str], fuzzy: str = "") -> None:
    folder = root / code / "LC_MESSAGES"
    folder.mkdir(parents=True, exist_ok=True)
    lines = ['msgid ""', 'msgstr ""', '"Content-Type: text/plain; charset=utf-8\\n"', ""]
    for message_id, text in entries.items():
        if message_id == fuzzy:
            lines.append("#, fuzzy")
        lines += [f'msgid "{message_id}"', f'msgstr "{text}"', ""]
    (folder / f"{domain}.po").write_text("\n".join(lines), encoding="utf-8")


@pytest.fixture
def locale_dir(tmp_path: Path) -> Path:
    """ja complete, vi with one message empty and one fuzzy, en without any,
    plus a folder for a language nobody registered."""
    japanese = {"Hello": "こんにちは", "Bye": "さようなら", "Wait": "お待ちください"}
    write_po(tmp_path, "ja", "kiosk", japanese)
    write_po(tmp_path, "vi", "kiosk", {"Hello": "Xin chào", "Bye": "", "Wait": "Đợi"}, "Wait")
    write_po(tmp_path, "en", "kiosk", {})
    write_po(tmp_path, "xx", "kiosk", japanese)
    write_po(tmp_path, "zh-Hant", "kiosk", {"Hello": "你好", "Bye": "再見", "Wait": "請稍候"})
    return tmp_path


def test_languages_registry_is_the_contract() -> None:
    assert [language.code for language in LANGUAGES] == CONTRACT
    assert BY_CODE["ne"].script == "Deva" and BY_CODE["ne"].font == "AnnapurnaSIL"
    assert {BY_CODE[c].babel_locale for c in ("ja", "ja-x-easy")} == {"ja"}
    assert BY_CODE["zh-Hant"].babel_locale == "zh_Hant" and BY_CODE["pt-BR"].babel_locale == "pt_BR"
    assert all(language.name for language in LANGUAGES)


@pytest.mark.parametrize(
    ("tag", "code"),
    [
        ("zh-CN", "zh-Hans"), ("zh-SG", "zh-Hans"), ("zh", "zh-Hans"), ("zh-TW", "zh-Hant"),
        ("zh-HK", "zh-Hant"), ("zh-MO", "zh-Hant"), ("zh-Hant-TW", "zh-Hant"),
        ("ZH-hans", "zh-Hans"), ("pt", "pt-BR"), ("pt-PT", "pt-BR"), ("pt-br", "pt-BR"),
        ("tl", "fil"), ("fil-PH", "fil"), ("ja", "ja"), ("ja-JP", "ja"),
        ("ja-x-easy", "ja-x-easy"), ("in", "id"), ("id-ID", "id"), ("en-GB", "en"),
        ("ne-NP", "ne"), ("es-419", "es"), ("ko-KR", "ko"), ("vi", "vi"), ("fr", None),
        ("", None), ("x", None),
    ],
)  # fmt: skip
def test_languages_match_maps_tags_to_codes(tag: str, code: str | None) -> None:
    assert match(tag) == code


def test_catalogues_offer_registered_languages_in_registry_order(locale_dir: Path) -> None:
    assert Catalogues(locale_dir, "kiosk", "ja").languages() == ["ja", "en", "zh-Hant", "vi"]


def test_catalogues_missing_message_shows_japanese_or_english_by_font_and_logs_once(
    locale_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    catalogues = Catalogues(locale_dir, "kiosk", "ja")
    with caplog.at_level(logging.WARNING, logger="foundation.i18n"):
        assert catalogues.translate("vi", "Hello") == "Xin chào"
        # Empty or fuzzy (not trusted): English, as Vietnamese's Latin font cannot draw Japanese.
        assert catalogues.translate("vi", "Bye") == "Bye"
        assert catalogues.translate("vi", "Wait") == "Wait"
        assert catalogues.translate("vi", "Bye") == "Bye"
        assert catalogues.translate("zh-Hant", "Bye") == "再見"
    records = [r for r in caplog.records if r.name == "foundation.i18n"]
    assert len(records) == 1
    assert (records[0].language, records[0].domain) == ("vi", "kiosk")  # type: ignore[attr-defined]
    assert records[0].fallback == "en"  # type: ignore[attr-defined]
    # English repeats the message ids; a language drawn in the Japanese font
    # (Korean, Chinese, やさしい日本語) falls back to Japanese, catalogue or not.
    assert catalogues.translate("en", "Bye") == "Bye"
    assert catalogues.translate("ko", "Bye") == "さようなら"
    assert catalogues.translate("ne", "Bye") == "Bye"


def test_catalogues_missing_lists_what_a_language_lacks(locale_dir: Path) -> None:
    catalogues = Catalogues(locale_dir, "kiosk", "ja")
    assert catalogues.missing("vi") == ["Bye", "Wait"]
    assert catalogues.missing("zh-Hant") == []
    assert catalogues.missing("ko") == ["Bye", "Hello", "Wait"]
    assert catalogues.own("vi", "Hello") == "Xin chào"
    assert catalogues.own("vi", "Bye") is None


def test_check_translations_warns_naming_language_and_count(locale_dir: Path) -> None:
    ctx = DoctorContext(config_path=locale_dir / "device.toml", config=None)
    result = check_translations(ctx, locale_dir)
    assert result.status is Status.WARN
    assert "vi lacks 2" in result.finding and "zh-Hant" not in result.finding
    assert result.details["missing"] == {"vi": 2}
    (locale_dir / "vi" / "LC_MESSAGES" / "kiosk.po").unlink()
    assert check_translations(ctx, locale_dir).status is Status.OK
    assert kiosk_locale_dir() == Path(kiosk.i18n.__file__).parent / "locale"


# --- the booking site ---------------------------------------------------------


@pytest.fixture
def every_booking_language(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for code in CONTRACT:
        write_po(tmp_path, code, "booking", {"Hello": code})
    catalogues = Catalogues(tmp_path, "booking", "ja")
    monkeypatch.setattr(booking_i18n, "CATALOGUES", catalogues)


@pytest.mark.parametrize(
    ("candidates", "header", "code"),
    [
        ([], "zh-TW,zh;q=0.8,en;q=0.5", "zh-Hant"), ([], "zh-CN", "zh-Hans"),
        ([], "pt-PT", "pt-BR"), ([], "tl", "fil"), ([], "in", "id"), ([], "ja-JP", "ja"),
        ([], "fr-FR, en;q=0.3, vi;q=0.9", "vi"), ([], "es;q=0, ko", "ko"), ([], "fr", "ja"),
        (["ja-x-easy"], "en", "ja-x-easy"), (["zh-Hans"], "ko", "zh-Hans"),
        ([None, "pt-BR"], "en", "pt-BR"), (["xx"], "ne", "ne"),
    ],
)  # fmt: skip
def test_booking_pick_maps_accept_language(
    every_booking_language: None, candidates: list[str | None], header: str, code: str
) -> None:
    assert booking_i18n.pick(candidates, header) == code


def test_booking_words_of_a_stored_tag_and_dates(every_booking_language: None) -> None:
    assert booking_i18n.Words.preferred("zh-TW").lang == "zh-Hant"
    assert booking_i18n.Words.preferred("unknown").lang == "ja"
    sunday = date(2027, 1, 17)
    assert booking_i18n.Words("ja-x-easy").day(sunday) == "2027年1月17日(日)"
    assert booking_i18n.Words("zh-Hant").day(sunday) == "2027年1月17日週日"
    assert booking_i18n.Words("es").day(sunday) == "dom 17 ene 2027"
    assert set(booking_i18n.LANGUAGE_NAMES) == set(CONTRACT)


# --- certificate names ----------------------------------------------------------


def test_default_kinds_english_labels_are_kiosk_message_ids() -> None:
    labels = {kind.label_en for kind in _default_kinds()}
    assert labels <= set(tx.CATALOGUE_LABELS)
    for label in labels:
        japanese = kiosk.i18n.own_translation("ja", label)
        assert japanese in {kind.label_ja for kind in _default_kinds()}


def flow_in(tmp_path: Path, language: str) -> IssuanceFlow:
    flow = make_rig(tmp_path).flow
    flow.language = language
    return flow


def test_kind_name_japanese_alone_in_japanese(tmp_path: Path) -> None:
    for language in ("ja", "ja-x-easy"):
        assert flow_in(tmp_path, language).kind_name(RESIDENCE) == ("住民票の写し", "")


def test_kind_name_translation_beside_japanese(
    tmp_path: Path, locale_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert flow_in(tmp_path, "en").kind_name(RESIDENCE) == (
        "住民票の写し", "Certificate of residence",
    )  # fmt: skip
    write_po(locale_dir, "vi", "kiosk", {"Certificate of residence": "Giấy chứng nhận cư trú"})
    monkeypatch.setattr(kiosk.i18n, "CATALOGUES", Catalogues(locale_dir, "kiosk", "ja"))
    assert flow_in(tmp_path, "vi").kind_name(RESIDENCE) == (
        "住民票の写し",
        "Giấy chứng nhận cư trú",
    )
    # Not in the language's own catalogue: central's English label, never
    # the Japanese fallback twice.
    assert flow_in(tmp_path, "zh-Hant").kind_name(RESIDENCE) == (
        "住民票の写し", "Certificate of residence",
    )  # fmt: skip
    custom = RESIDENCE.model_copy(update={"label_ja": "独自証明", "label_en": "Custom paper"})
    assert flow_in(tmp_path, "vi").kind_name(custom) == ("独自証明", "Custom paper")


def test_issuance_idle_returns_to_the_default_language(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    rig.flow.start(rig.at())
    rig.flow.choose_language("ne", rig.at())
    rig.flow.tick(rig.at(200))
    assert rig.flow.language == "ja"


def test_font_for_each_language() -> None:
    from kiosk.touch.mixed import font_for

    assert font_for("ja") == font_for("ko") == ("NotoSansCJK", "Latn")
    assert font_for("ne") == ("AnnapurnaSIL", "Deva")
    assert font_for("vi") == ("NotoSans", "Latn")
    assert font_for("unknown") == ("NotoSansCJK", "Latn")


def test_kind_markup_puts_the_japanese_name_in_the_japanese_font() -> None:
    from kiosk.touch.mixed import beside

    assert beside("住民票の写し", "") == "[font=NotoSansCJK]住民票の写し[/font]"
    assert beside("住民票[写]", "Giấy & [x]") == (
        "[font=NotoSansCJK]住民票&bl;写&br;（[/font]Giấy &amp; &bl;x&br;[font=NotoSansCJK]）[/font]"
    )
    assert "[font=NotoSans]Custom paper[/font]" in beside("独自", "Custom paper", english=True)


def test_mixed_markup_puts_japanese_names_in_the_japanese_font() -> None:
    from kiosk.touch.mixed import mixed_markup

    sentence = "会議室 A is open for 10 seconds."
    assert mixed_markup(sentence, "NotoSans") == (
        "[font=NotoSansCJK]会議室 [/font]A is open for 10 seconds."
    )
    assert mixed_markup(sentence, "NotoSansCJK") == sentence  # already the CJK font
    assert mixed_markup("Room [A] & B", "NotoSans") == "Room &bl;A&br; &amp; B"
    assert mixed_markup("कोठा 会議室", "AnnapurnaSIL") == ("कोठा [font=NotoSansCJK]会議室[/font]")


def test_latin_marks_english_fallbacks_for_other_scripts() -> None:
    from kiosk.touch.mixed import latin

    assert latin("Who is listed", english=True) == "[font=NotoSans]Who is listed[/font]"
    assert latin("को [सूची]", english=False) == "को &bl;सूची&br;"


def test_mixed_plain_is_the_text_a_markup_label_shows() -> None:
    from kiosk.touch.mixed import mixed_markup, plain

    text = "Room [A] & 会議室"
    shown = mixed_markup(text, "NotoSans")
    assert shown != text and "[font=" in shown
    assert plain(shown) == text
    assert plain("[b]Next[/b]") == "Next"
