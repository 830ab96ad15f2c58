"""Every screen of every touchscreen (and the enrolment mode) has a spoken
prompt in every language with a catalogue, synthesised by the real
synthesisers (Open JTalk for Japanese, eSpeak NG for the others): each
sentence's audio is a real WAV, and each prompt lasts at least 0.3 s.

Synthesis runs once per module into one cache, two at a time; the views'
property names in the tables are checked against the real views."""

from __future__ import annotations

import wave
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from kiosk.checkin import messages as cm
from kiosk.checkin.ui.view import CheckinView
from kiosk.enrolment import texts as et
from kiosk.enrolment.ui.view import EnrolmentView
from kiosk.i18n import available_languages, translate
from kiosk.issuance import texts as it
from kiosk.issuance.ui.view import IssuanceView
from kiosk.touch import texts as tt
from kiosk.voice.cache import AudioCache
from kiosk.voice.prompts import CHECKIN, ENROLMENT, ISSUANCE, Prompt, ScreenSpeech, prompt_for
from kiosk.voice.voices import VoiceSet, voices_for
from sync.config import VoiceSection

pytestmark = pytest.mark.integration

MIN_PROMPT_SECONDS = 0.3
MIN_SENTENCE_SECONDS = 0.1
ROOM = {"room": "Room A", "seconds": 5}

# What each screen's views hold (message id, values), as the flows fill them.
SHOWN: dict[str, dict[str, tuple[str, dict[str, object]]]] = {
    "checkin": {
        "t_tap": (cm.TAP_YOUR_CARD, {}), "t_or_code": (cm.OR_ENTER_CODE, {}),
        "t_enter_code": (cm.ENTER_CODE, {}),
        "title": ("Welcome", {}), "body": ("{room} is open for {seconds} seconds.", ROOM),
        "next_step": ("Please go in now. The door locks again by itself.", {}),
    },
    "issuance": {
        "t_service": (it.SERVICE_TITLE, {}), "t_place_card": (it.PLACE_CARD, {}),
        "t_place_hint": (it.PLACE_CARD_HINT, {}), "wait_text": (it.READING_CARD, {}),
        "tries_text": (it.TRIES_LEFT, {"tries": 3}), "t_choose_kind": (it.CHOOSE_KIND, {}),
        "t_options": (it.OPTIONS, {}), "t_options_hint": (it.OPTIONS_HINT, {}),
        "t_copies": (it.COPIES, {}), "copies_text": ("2", {}), "t_confirm": (it.CONFIRM, {}),
        "total_text": (it.TOTAL, {"total": 600}), "t_printing": (it.PRINTING, {}),
        "t_printing_hint": (it.PRINTING_HINT, {}), "t_take_card_hint": (it.TAKE_CARD_HINT, {}),
        "t_thanks": (it.THANK_YOU, {}), "t_take_certs": (it.TAKE_CERTIFICATES, {}),
        "t_thanks_body": (it.THANK_YOU_BODY, {}),
        "title": ("Printing failed", {}),
        "body": ("Your payment of {total} yen has been refunded.", {"total": 300}),
    },
    "enrolment": {
        "t_enter_code": (et.ENTER_CODE, {}), "t_code_hint": (et.CODE_HINT, {}),
        "t_tap_card": (et.TAP_CARD, {}), "t_tap_hint": (et.TAP_HINT, {}),
        "title": (et.CHECKING_CODE, {}), "body": ("This code has expired.", {}),
    },
}  # fmt: skip
TABLES: dict[str, Mapping[str, ScreenSpeech]] = {
    "checkin": CHECKIN, "issuance": ISSUANCE, "enrolment": ENROLMENT,
}  # fmt: skip
VIEWS = {"checkin": CheckinView, "issuance": IssuanceView, "enrolment": EnrolmentView}


def reader(flow: str, language: str, screen: str) -> dict[str, object]:
    shown: dict[str, object] = {
        name: translate(language, message, **values)
        for name, (message, values) in SHOWN[flow].items()
    }
    shown["pin_dots"] = "●●○○"
    shown["kinds"] = [("juminhyo", "住民票の写し", translate(language, it.FEE_EACH, fee=300))]
    shown["options"] = [("household", "世帯全員", [("true", translate(language, it.ON), True)])]
    shown["t_still_there"] = translate(language, tt.STILL_THERE)
    return shown


def all_prompts() -> list[tuple[str, str, Prompt]]:
    found = []
    for flow, table in TABLES.items():
        for screen in table:
            for language in available_languages():
                shown = reader(flow, language, screen)
                prompt = prompt_for(table, screen, language, shown.get)
                assert prompt is not None
                found.append((flow, screen, prompt))
    return found


@pytest.fixture(scope="module")
def synthesised(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AudioCache, VoiceSet]]:
    voices = voices_for(VoiceSection(), available_languages())
    assert voices.problems == []
    cache = AudioCache(tmp_path_factory.mktemp("voice-cache"))
    jobs = []
    for _flow, _screen, prompt in all_prompts():
        synth = voices.for_language(prompt.language)
        assert synth is not None
        jobs += [(synth, sentence) for sentence in prompt.sentences]
    report = cache.build(jobs, workers=2)
    assert report.failed == []
    yield cache, voices


def duration(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        return float(wav.getnframes()) / wav.getframerate()


def test_voice_every_screen_and_language_has_audio(
    synthesised: tuple[AudioCache, VoiceSet],
) -> None:
    cache, voices = synthesised
    prompts = all_prompts()
    assert {(f, s) for f, s, _p in prompts} == {(f, s) for f, t in TABLES.items() for s in t}
    for flow, screen, prompt in prompts:
        assert prompt.sentences, (flow, screen, prompt.language)
        synth = voices.for_language(prompt.language)
        assert synth is not None
        seconds = [duration(cache.path(synth.voice_id, s)) for s in prompt.sentences]
        assert all(s >= MIN_SENTENCE_SECONDS for s in seconds), (flow, screen, prompt, seconds)
        assert sum(seconds) >= MIN_PROMPT_SECONDS, (flow, screen, prompt.language)


def test_voice_japanese_is_spoken_by_open_jtalk(synthesised: tuple[AudioCache, VoiceSet]) -> None:
    _cache, voices = synthesised
    synth = voices.for_language("ja")
    assert synth is not None and synth.voice_id.startswith("open_jtalk/mei_normal")


@pytest.mark.parametrize("flow", sorted(TABLES))
def test_voice_tables_name_real_view_properties(flow: str) -> None:
    from kiosk.touch.view import TouchView

    views = [VIEWS[flow](), TouchView()]
    for screen, speech in TABLES[flow].items():
        names = [*speech.fields, *(f for f, _m in speech.flags), speech.items,
                 speech.count_field, speech.tries_field]  # fmt: skip
        for name in filter(None, names):
            assert any(hasattr(v, name) for v in views), (flow, screen, name)
