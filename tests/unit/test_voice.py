"""Voice guidance without sound hardware: what each screen says (and that
the PIN screen never says a digit), the cache, the guide's decisions on
the UI thread, the ALSA player's failure modes, and the config section."""

from __future__ import annotations

import json
import logging
import os
import time
import wave
from collections.abc import Callable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import pytest

from kiosk.i18n import available_languages, translate
from kiosk.issuance import texts as it
from kiosk.voice import texts as vx
from kiosk.voice.cache import AudioCache, cache_key
from kiosk.voice.catalogue import texts_for
from kiosk.voice.guide import VoiceGuide
from kiosk.voice.player import AlsaPlayer, SimulatedPlayer, scaled
from kiosk.voice.prompts import (
    ISSUANCE,
    count_words,
    has_digit,
    prompt_for,
    screen_sentences,
)
from kiosk.voice.synth import SimulatedSynth, write_tone
from kiosk.voice.voices import VoiceSet, voices_for
from sync.config import VoiceSection, parse_config

pytestmark = pytest.mark.unit


class ManualExecutor(Executor):
    """Runs submitted work only when the test says (a worker thread's timing)."""

    def __init__(self) -> None:
        self.pending: list[Callable[[], Any]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.pending.append(lambda: fn(*args, **kwargs))
        return Future()

    def run_all(self) -> None:
        while self.pending:
            self.pending.pop(0)()


def view(**values: Any) -> Callable[[str], Any]:
    return values.get


def guide_for(
    tmp_path: Path, synth: SimulatedSynth | None = None
) -> tuple[VoiceGuide, SimulatedPlayer, ManualExecutor, SimulatedSynth]:
    synth = synth or SimulatedSynth()
    voices = VoiceSet(dict.fromkeys(("ja", "en"), synth), fallback=synth)
    player, executor = SimulatedPlayer(), ManualExecutor()
    guide = VoiceGuide(voices, AudioCache(tmp_path / "cache"), player, executor=executor)
    return guide, player, executor, synth


def played_texts(guide: VoiceGuide, files: tuple[Path, ...], synth: SimulatedSynth, language: str,
                 candidates: list[str]) -> list[str]:  # fmt: skip
    by_path = {guide.cache.path(synth.voice_id, text): text for text in candidates}
    return [by_path.get(f, f"?{f.name}") for f in files]


# --- the PIN is never spoken ---------------------------------------------------------
@pytest.mark.parametrize("language", available_languages())
def test_voice_pin_screen_never_says_a_digit(language: str) -> None:
    pin = ISSUANCE["pin"]
    for count in range(5):
        for tries in range(4):
            for error, last in ((False, False), (True, False), (True, True)):
                read = view(
                    pin_dots="●" * count + "○" * (4 - count),
                    tries_text=translate(language, it.TRIES_LEFT, tries=tries) if tries else "",
                    pin_error=error, last_try=last,
                    t_wrong_pin=translate(language, it.WRONG_PIN),
                    t_last_try=translate(language, it.LAST_TRY),
                    t_enter_pin=translate(language, it.ENTER_PIN),
                )  # fmt: skip
                said = screen_sentences(pin, "pin", language, read)
                assert said, (count, tries)
                assert not [s for s in said if has_digit(s)], said
        assert not has_digit(count_words(language, count))


def test_voice_pin_count_is_said_in_words() -> None:
    assert count_words("en", 1) == "One digit entered."
    assert count_words("en", 4).startswith("All four digits entered")
    assert count_words("ja", 2) == "二けた入力しました。"


def test_voice_digit_guard_drops_a_translation_with_a_digit() -> None:
    read = view(pin_dots="●○○○", pin_error=True, t_wrong_pin="Wrong PIN 1234")
    prompt = prompt_for(ISSUANCE, "pin", "en", read)
    assert prompt is not None
    assert "Wrong PIN 1234" not in prompt.sentences
    assert "One digit entered." in prompt.sentences


# --- what the guide says when ---------------------------------------------------------
def test_voice_guide_speaks_a_new_screen_once_and_not_on_ticks(tmp_path: Path) -> None:
    guide, player, executor, synth = guide_for(tmp_path)
    read = view(t_place_card="Place your card", t_place_hint="Leave it there")
    guide.show(ISSUANCE, "place_card", "en", read)
    assert player.started == []  # nothing cached: synthesised off the UI thread first
    executor.run_all()
    assert len(player.started) == 1
    texts = ["Place your card", "Leave it there"]
    assert played_texts(guide, player.started[0], synth, "en", texts) == texts
    guide.show(ISSUANCE, "place_card", "en", read)  # a clock tick: same screen
    assert len(player.started) == 1
    guide.read_again()
    assert player.started[-1] == player.started[0] and len(player.started) == 2


def test_voice_guide_says_the_pin_count_as_it_changes(tmp_path: Path) -> None:
    guide, player, executor, synth = guide_for(tmp_path)
    guide.show(ISSUANCE, "pin", "ja", view(pin_dots="○○○○"))
    executor.run_all()
    guide.show(ISSUANCE, "pin", "ja", view(pin_dots="●●○○"))
    executor.run_all()
    last = played_texts(guide, player.started[-1], synth, "ja", [count_words("ja", 2)])
    assert last == [count_words("ja", 2)]


def test_voice_guide_says_only_the_new_words_of_the_same_screen(tmp_path: Path) -> None:
    guide, player, executor, synth = guide_for(tmp_path)
    wrong, two_left = translate("en", vx.WRONG_PIN), translate("en", vx.TRIES_LEFT_WORDS[2])
    guide.show(ISSUANCE, "pin", "en", view(pin_dots="●●●○", tries_text="Tries left: 3"))
    guide.show(ISSUANCE, "pin", "en", view(pin_dots="●●●●", tries_text="Tries left: 3"))
    guide.show(ISSUANCE, "pin", "en", view(pin_dots="○○○○", tries_text="Tries left: 2",
                                           pin_error=True))  # fmt: skip
    executor.run_all()
    last = played_texts(guide, player.started[-1], synth, "en", [wrong, two_left])
    assert last == [wrong, two_left]
    guide.show(ISSUANCE, "pin", "en", view(pin_dots="●○○○", tries_text="Tries left: 2"))
    executor.run_all()  # the error line went away: only the count is new
    one = count_words("en", 1)
    assert played_texts(guide, player.started[-1], synth, "en", [one]) == [one]


def test_voice_language_choices_are_said_each_in_its_own_voice(tmp_path: Path) -> None:
    ja, en = SimulatedSynth("ja"), SimulatedSynth("en")
    player, executor = SimulatedPlayer(), ManualExecutor()
    guide = VoiceGuide(VoiceSet({"ja": ja, "en": en}), AudioCache(tmp_path), player,
                       executor=executor)  # fmt: skip
    guide.show(ISSUANCE, "language", "ja", view(), [("ja", "日本語"), ("en", "English")])
    executor.run_all()
    choose = translate("ja", vx.CHOOSE_LANGUAGE)
    assert player.started[-1] == (
        guide.cache.path(ja.voice_id, choose),
        guide.cache.path(ja.voice_id, "日本語"),
        guide.cache.path(en.voice_id, "English"),
    )
    assert en.made == ["English"]


def test_voice_guide_language_change_speaks_again(tmp_path: Path) -> None:
    guide, player, executor, _synth = guide_for(tmp_path)
    guide.show(ISSUANCE, "language", "ja", view())
    executor.run_all()
    guide.show(ISSUANCE, "language", "en", view())
    executor.run_all()
    assert len(player.started) == 2 and player.started[0] != player.started[1]


def test_voice_guide_drops_a_late_prompt_for_a_screen_already_left(tmp_path: Path) -> None:
    guide, player, executor, _synth = guide_for(tmp_path)
    guide.show(ISSUANCE, "place_card", "en", view(t_place_card="Place your card"))
    guide.show(ISSUANCE, "thanks", "en", view(t_thanks="Thank you"))
    executor.run_all()  # both syntheses finish after the person moved on
    assert len(player.started) == 1
    assert player.started[0] == (guide.cache.path("sim/sim", "Thank you"),)


def test_voice_guide_synthesis_failure_is_silent_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    guide, player, executor, _synth = guide_for(tmp_path, SimulatedSynth(fail=True))
    with caplog.at_level(logging.WARNING):
        guide.show(ISSUANCE, "thanks", "en", view(t_thanks="Thank you"))
        guide.read_again()
        executor.run_all()
    assert player.started == []
    assert len([r for r in caplog.records if "synthesis failed" in r.getMessage()]) == 1


def test_voice_say_speaks_one_text(tmp_path: Path) -> None:
    guide, player, executor, synth = guide_for(tmp_path)
    guide.say("Language", "en")
    executor.run_all()
    assert played_texts(guide, player.started[-1], synth, "en", ["Language"]) == ["Language"]


# --- the cache ------------------------------------------------------------------------
def test_voice_cache_build_is_idempotent_and_writes_the_manifest(tmp_path: Path) -> None:
    synth = SimulatedSynth()
    jobs = [(synth, t) for t in texts_for("en", {"room": ["Room A"], "seconds": [5]})][:30]
    cache = AudioCache(tmp_path)
    first = cache.build(jobs, workers=2)
    assert first.made == len(jobs) and not first.failed
    made = list(synth.made)
    again = AudioCache(tmp_path)
    assert again.load_index() == len(jobs)
    second = again.build(jobs, workers=2)
    assert second.made == 0 and second.present == len(jobs) and synth.made == made
    manifest = json.loads(again.write_manifest(jobs).read_text())
    assert sorted(manifest["files"]) == sorted(
        f"{cache_key(synth.voice_id, t)}.wav" for _s, t in jobs
    )
    assert not list(tmp_path.glob(".*.part"))


def test_voice_catalogue_fills_known_values_and_skips_unknown_ones() -> None:
    said = texts_for("en", {"room": ["Room A"], "seconds": [7]})
    assert "Room A is open for 7 seconds." in said
    assert "Tries left: 2" in said
    assert not [s for s in said if "{" in s]
    assert "One digit entered." in said


def test_voice_index_is_one_directory_listing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The UI start reads the index: one listing, no file opened or stat'ed."""
    for i in range(500):
        (tmp_path / f"{cache_key('v', str(i))}.wav").write_bytes(b"")
    (tmp_path / "manifest.json").write_text("{}")
    calls: list[str] = []
    real_scandir = os.scandir

    def scandir(path: Any) -> Any:
        calls.append(str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(Path, "stat", lambda *_a, **_k: pytest.fail("stat on load"))
    cache = AudioCache(tmp_path)
    assert cache.load_index() == 500
    assert calls == [str(tmp_path)]
    assert cache.has("v", "42") and not cache.has("v", "500")


# --- the ALSA player ----------------------------------------------------------------------
def test_voice_player_writes_to_the_null_device(tmp_path: Path) -> None:
    write_tone(tmp_path / "a.wav", 0.3)
    player = AlsaPlayer("null", 80)
    try:
        player.play([tmp_path / "a.wav"])
        deadline = time.monotonic() + 5
        while player.first_write is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert player.first_write is not None
    finally:
        player.close()


def test_voice_missing_audio_file_is_silent_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_tone(tmp_path / "ok.wav", 0.2)
    player = AlsaPlayer("null", 80)
    try:
        with caplog.at_level(logging.WARNING):
            for _ in range(3):
                player.play([tmp_path / "gone.wav", tmp_path / "ok.wav"])
                _wait_taken(player)
            _wait_for(lambda: player.first_write is not None)
            player.close()  # joins the playback thread: nothing more is logged
    finally:
        player.close()
    missing = [r for r in caplog.records if getattr(r, "voice_problem", "") == "missing_audio"]
    assert len(missing) == 1 and missing[0].file == "gone.wav"  # type: ignore[attr-defined]
    assert player.first_write is not None  # the file that exists was still played


def test_voice_no_sound_device_is_silent_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_tone(tmp_path / "a.wav", 0.2)
    player = AlsaPlayer("no_such_device_here", 80)
    try:

        def no_device() -> list[logging.LogRecord]:
            return [r for r in caplog.records if getattr(r, "voice_problem", "") == "no_device"]

        with caplog.at_level(logging.WARNING):
            for _ in range(3):
                player.play([tmp_path / "a.wav"])
                _wait_taken(player)
            _wait_for(lambda: bool(no_device()))
            player.close()  # joins the playback thread: nothing more is logged
    finally:
        player.close()
    problems = [r for r in caplog.records if getattr(r, "voice_problem", "") == "no_device"]
    assert len(problems) == 1 and player.first_write is None


def _wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _wait_taken(player: AlsaPlayer) -> None:
    """Until the playback thread has taken the last request (it holds none)."""
    _wait_for(lambda: player._files is None)


def test_voice_volume_scales_samples() -> None:
    frames = b"".join(v.to_bytes(2, "little", signed=True) for v in (1000, -2000, 0))
    half = scaled(frames, 50)
    assert [int.from_bytes(half[i : i + 2], "little", signed=True) for i in (0, 2, 4)] == [
        500,
        -1000,
        0,
    ]
    assert scaled(frames, 100) == frames
    assert scaled(frames, 0) == bytes(6)


# --- configuration and voices ----------------------------------------------------------
def test_voice_config_defaults_keep_old_configs_working(tmp_path: Path) -> None:
    config = parse_config('[device]\nid = "d1"\nfacility = "f"\n', "t", tmp_path)
    assert config.voice.enabled and config.voice.device == "default"
    assert config.voice.volume == 80 and config.voice.cache_dir == tmp_path / "voice-cache"


def test_voice_every_language_has_a_synthesiser() -> None:
    languages = [*available_languages(), "ja-x-easy", "zh-Hans", "zh-Hant", "ko", "vi", "pt-BR",
                 "fil", "id", "ne", "es"]  # fmt: skip
    voices = voices_for(VoiceSection(), languages)
    assert voices.problems == []
    for language in languages:
        synth = voices.for_language(language)
        assert synth is not None, language
    assert voices.for_language("ja") is not None
    assert voices.for_language("ja").voice_id.startswith("open_jtalk/")  # type: ignore[union-attr]
    assert "/id/" in voices.for_language("fil").voice_id  # type: ignore[union-attr]


def test_voice_tone_is_a_valid_wav(tmp_path: Path) -> None:
    write_tone(tmp_path / "t.wav", 0.5, rate=8000)
    with wave.open(str(tmp_path / "t.wav")) as wav:
        assert wav.getnframes() == 4000
    assert vx.DIGITS_ENTERED[0]


def test_voice_start_up_fill_makes_missing_entries_in_the_background(tmp_path: Path) -> None:
    synth = SimulatedSynth()
    guide = VoiceGuide(VoiceSet({"en": synth}), AudioCache(tmp_path), SimulatedPlayer())
    try:
        guide.prepare(lambda: [("en", "Start"), ("en", "Next"), ("xx", "no voice")])
        deadline = time.monotonic() + 5
        while not guide.cache.has(synth.voice_id, "Next") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert guide.cache.has(synth.voice_id, "Start") and guide.cache.has(synth.voice_id, "Next")
    finally:
        guide.close()


def test_prompts_spoken_drops_markup_and_reads_the_translation_beside_a_japanese_name() -> None:
    from kiosk.touch.mixed import beside
    from kiosk.voice.prompts import spoken

    label = beside("住民票の写し", "Giấy xác nhận cư trú")
    assert "[font" in label
    assert spoken(label, "vi") == "Giấy xác nhận cư trú"
    assert spoken(beside("住民票の写し", ""), "ja") == "住民票の写し"
    assert spoken("Room &bl;A&br; &amp; B", "en") == "Room [A] & B"
    assert spoken("[b]Total[/b]", "en") == "Total"


def test_voice_guide_keypad_focus_follows_a_prompt_just_started(tmp_path: Path) -> None:
    guide, player, executor, synth = guide_for(tmp_path)
    read = view(t_place_card="Place your card", t_place_hint="Leave it there")
    guide.show(ISSUANCE, "place_card", "en", read)
    executor.run_all()
    guide.say("Cancel, 1 of 1", "en")  # the focus a new screen opens on
    executor.run_all()
    texts = ["Place your card", "Leave it there", "Cancel, 1 of 1"]
    assert played_texts(guide, player.started[-1], synth, "en", texts) == texts
    guide.say("Back, 1 of 2", "en")  # a later key: cuts in, alone
    executor.run_all()
    assert played_texts(guide, player.started[-1], synth, "en", ["Back, 1 of 2"]) == [
        "Back, 1 of 2"
    ]


@pytest.mark.parametrize(
    ("screens", "table"),
    [
        ("kiosk.checkin.session:CheckinScreen", "CHECKIN"),
        ("kiosk.issuance.flow:IssuanceScreen", "ISSUANCE"),
        ("kiosk.enrolment.flow:EnrolmentScreen", "ENROLMENT"),
    ],
)
def test_voice_every_screen_of_every_flow_has_a_prompt(screens: str, table: str) -> None:
    import importlib

    from kiosk.voice import prompts

    module, name = screens.split(":")
    names = {str(screen) for screen in getattr(importlib.import_module(module), name)}
    assert names - set(getattr(prompts, table)) == set()
