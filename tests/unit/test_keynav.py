"""The keypad's pure logic: every key of the map, the navigator's edges
(empty screen, wrap-around, disabled buttons, digit screens), what is said
(never a typed digit), the presence watch and the doctor's keypad check."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from deploy.checks import DoctorContext, Status
from deploy.checks.hardware import check_keypad
from kiosk.i18n import translate, translations
from kiosk.touch import keynav
from kiosk.touch.keynav import (
    Intent,
    Item,
    Key,
    Step,
    announce,
    first_focus,
    key_map,
    navigate,
    spoken_label,
    typed_count,
    typed_message,
)
from kiosk.touch.keypad_presence import Change, KeypadPresence
from sync.config import parse_config
from sync.errors import ConfigError


def en(message: str, **values: object) -> str:
    return translate("en", message, **values)


def ja(message: str, **values: object) -> str:
    return translate("ja", message, **values)


KEYS = key_map()
# Kivy keycode -> (digit printed on the key, what it does off digit screens).
EXPECTED = {
    256: ("0", Intent.NONE), 257: ("1", Intent.LAST), 258: ("2", Intent.NEXT),
    259: ("3", Intent.NONE), 260: ("4", Intent.PREVIOUS), 261: ("5", Intent.CHOOSE),
    262: ("6", Intent.NEXT), 263: ("7", Intent.FIRST), 264: ("8", Intent.PREVIOUS),
    265: ("9", Intent.NONE), 266: ("", Intent.DELETE), 267: ("", Intent.NONE),
    268: ("", Intent.STAFF), 269: ("", Intent.BACK), 270: ("", Intent.REPEAT),
    271: ("", Intent.CHOOSE), 13: ("", Intent.CHOOSE), 8: ("", Intent.DELETE),
    9: ("", Intent.NEXT), 127: ("", Intent.DELETE),
    # NumLock off: navigation keys, each carrying the digit of its key.
    277: ("0", Intent.NONE), 279: ("1", Intent.LAST), 274: ("2", Intent.NEXT),
    281: ("3", Intent.NONE), 276: ("4", Intent.PREVIOUS), 275: ("6", Intent.NEXT),
    278: ("7", Intent.FIRST), 273: ("8", Intent.PREVIOUS), 280: ("9", Intent.NONE),
    # The main keyboard's characters.
    46: ("", Intent.DELETE), 47: ("", Intent.NONE), 42: ("", Intent.STAFF),
    45: ("", Intent.BACK), 43: ("", Intent.REPEAT),
    **{48 + d: (str(d), KEYS[256 + d].intent) for d in range(10)},
}  # fmt: skip

SCREEN = [
    Item("Language"),
    Item("Larger text"),
    Item("Enter reservation code", primary=True),
    Item("Enrol a card", enabled=False),
    Item("Call staff"),
]


def key(code: int) -> Key:
    return KEYS[code]


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_keynav_key_map_every_key(code: int) -> None:
    assert (KEYS[code].digit, KEYS[code].intent) == EXPECTED[code]


def test_keynav_key_map_has_no_other_keys() -> None:
    assert set(KEYS) == set(EXPECTED)
    assert 27 not in KEYS and 282 not in KEYS  # Escape and F1 stay blocked, not keypad keys


@pytest.mark.parametrize(
    ("staff", "moved"),
    [("/", {267: Intent.STAFF, 47: Intent.STAFF, 268: Intent.NONE, 42: Intent.NONE}),
     ("-", {269: Intent.STAFF, 45: Intent.STAFF, 268: Intent.BACK, 42: Intent.BACK}),
     ("+", {270: Intent.STAFF, 268: Intent.REPEAT}),
     ("", {268: Intent.NONE, 42: Intent.NONE})],
)  # fmt: skip
def test_keynav_call_staff_key_configurable_swaps(staff: str, moved: dict[int, Intent]) -> None:
    keys = key_map(staff)
    for code, intent in moved.items():
        assert keys[code].intent is intent, code
    staff_keys = [c for c, k in keys.items() if k.intent is Intent.STAFF]
    assert len(staff_keys) == (2 if staff else 0)


def test_keynav_call_staff_key_must_not_be_a_digit() -> None:
    with pytest.raises(ValueError, match="call_staff_key"):
        key_map("0")


def test_keynav_first_focus_is_main_action_or_none() -> None:
    assert first_focus(SCREEN) == 2
    assert first_focus([Item("a"), Item("b", primary=True), Item("c", primary=True)]) == 1
    # "Place your card": only back and cancel, so nothing is focused on entry.
    assert first_focus([Item("Back", back=True), Item("Cancel", back=True)]) is None
    assert first_focus([Item("a", enabled=False, primary=True), Item("b")]) is None
    assert first_focus([]) is None


def test_keynav_first_key_without_main_action_starts_at_first_button() -> None:
    items = [Item("Back", enabled=False), Item("Back", back=True), Item("Cancel", back=True)]
    assert navigate(key(258), items, None, False, en) == Step(focus=1, say="Back, 1 of 2")
    assert navigate(key(261), items, None, False, en) == Step(focus=1, say="Back, 1 of 2")
    assert navigate(key(264), items, None, False, en).focus == 1


def test_keynav_next_previous_wrap_around_and_skip_disabled() -> None:
    assert navigate(key(258), SCREEN, 2, False, en).focus == 4  # 3 (disabled) skipped
    assert navigate(key(262), SCREEN, 4, False, en).focus == 0  # wraps to the first
    assert navigate(key(264), SCREEN, 0, False, en).focus == 4  # wraps to the last
    assert navigate(key(260), SCREEN, 4, False, en).focus == 2  # back over the disabled one
    assert navigate(key(274), SCREEN, 1, False, en).focus == 2  # arrow down
    assert navigate(key(273), SCREEN, 1, False, en).focus == 0  # arrow up


def test_keynav_first_and_last() -> None:
    assert navigate(key(263), SCREEN, 4, False, en).focus == 0
    assert navigate(key(257), SCREEN, 0, False, en).focus == 4
    assert navigate(key(257), SCREEN[:4], 0, False, en).focus == 2  # last enabled


def test_keynav_move_without_focus_starts_at_main_action() -> None:
    step = navigate(key(258), SCREEN, None, False, en)
    assert step.focus == 2 and step.say == "Enter reservation code, 3 of 4"
    # A focus on a button that went away or became disabled counts as none.
    assert navigate(key(258), SCREEN, 3, False, en).focus == 2
    assert navigate(key(258), SCREEN, 17, False, en).focus == 2


def test_keynav_move_says_label_and_position() -> None:
    step = navigate(key(262), SCREEN, 2, False, en)
    assert step.say == "Call staff, 4 of 4" and not step.press
    japanese = [Item("予約番号を入力", primary=True), Item("係員を呼ぶ")]
    assert navigate(key(262), japanese, 0, False, ja).say == "係員を呼ぶ、2個中2番目"


def test_keynav_choose_presses_the_focused_button() -> None:
    assert navigate(key(261), SCREEN, 4, False, en) == Step(focus=4, press=True)
    assert navigate(key(271), SCREEN, 0, False, en) == Step(focus=0, press=True)
    assert navigate(key(13), SCREEN, 1, False, en) == Step(focus=1, press=True)


def test_keynav_choose_without_focus_only_says_what_is_focused() -> None:
    step = navigate(key(271), SCREEN, None, False, en)
    assert step == Step(focus=2, say="Enter reservation code, 3 of 4")


def test_keynav_back_presses_the_screens_own_back_button() -> None:
    items = [Item("OK", primary=True), Item("Back", back=True), Item("Cancel", back=True)]
    assert navigate(key(269), items, 0, False, en) == Step(focus=1, press=True)
    disabled = [Item("OK"), Item("Back", back=True, enabled=False), Item("Cancel", back=True)]
    assert navigate(key(45), disabled, 0, False, en) == Step(focus=2, press=True)
    assert navigate(key(269), SCREEN, 2, False, en) == Step(focus=2)  # no way back here


def test_keynav_repeat_and_staff_on_every_screen() -> None:
    for digits in (False, True):
        assert navigate(key(270), SCREEN, 1, digits, en) == Step(focus=1, repeat=True)
        assert navigate(key(268), SCREEN, 1, digits, en) == Step(focus=1, act=("call_staff", ""))
    assert navigate(key(270), [], None, False, en) == Step(repeat=True)
    assert navigate(key(268), [], None, False, en).act == ("call_staff", "")


@pytest.mark.parametrize("code", [258, 264, 261, 271])
def test_keynav_empty_screen_moves_repeat_the_prompt(code: int) -> None:
    assert navigate(key(code), [], None, False, en) == Step(repeat=True)
    assert navigate(key(code), [Item("x", enabled=False)], 0, False, en) == Step(repeat=True)


@pytest.mark.parametrize("code", [256, 259, 265, 267, 266, 8, 269])
def test_keynav_empty_screen_other_keys_do_nothing(code: int) -> None:
    assert navigate(key(code), [], None, False, en) == Step()


@pytest.mark.parametrize("code", [256, 259, 265, 267, 266, 8, 127])
def test_keynav_unused_keys_keep_the_focus(code: int) -> None:
    assert navigate(key(code), SCREEN, 1, False, en) == Step(focus=1)


PIN_SCREEN = [Item(d) for d in "123456789"] + [
    Item("Clear"), Item("0"), Item("OK", primary=True),
    Item("Back", back=True), Item("Cancel", back=True),
]  # fmt: skip


@pytest.mark.parametrize("code", [*range(256, 266), *range(273, 282), *range(48, 58)])
def test_keynav_digit_screen_digits_type(code: int) -> None:
    digit = KEYS[code].digit
    if not digit:  # 275..281 without a digit do not exist: every listed one has one
        pytest.fail(f"{code} has no digit")
    step = navigate(key(code), PIN_SCREEN, None, True, en)
    assert step == Step(act=("key", digit), say_typed=True)


def test_keynav_digit_screen_enter_is_ok_and_delete_clears() -> None:
    for code in (271, 13):
        assert navigate(key(code), PIN_SCREEN, None, True, en) == Step(
            act=("key", "ok"), say_typed=True
        )
    for code in (266, 8, 127, 46):
        assert navigate(key(code), PIN_SCREEN, None, True, en) == Step(
            act=("key", "clear"), say_typed=True
        )


def test_keynav_digit_screen_back_and_unused_keys() -> None:
    assert navigate(key(269), PIN_SCREEN, None, True, en) == Step(focus=12, press=True)
    assert navigate(key(267), PIN_SCREEN, None, True, en) == Step()
    assert navigate(key(9), PIN_SCREEN, None, True, en) == Step()  # Tab: nothing to move to


def test_keynav_digit_screen_never_says_a_digit() -> None:
    for code in range(256, 266):
        step = navigate(key(code), PIN_SCREEN, None, True, en)
        assert step.say == "" and step.focus is None


def test_keynav_typed_count_from_dots_or_code() -> None:
    assert typed_count("●●○○") == 2
    assert typed_count("○○○○○○") == 0
    assert typed_count("●●●●●●") == 6
    assert typed_count("1234 5○○○") == 5  # an enrolment code, shown as typed
    assert typed_count("") == 0


@pytest.mark.parametrize("language", ["en", "ja"])
def test_keynav_typed_message_words_never_digits(language: str) -> None:
    said = [translate(language, typed_message(n)) for n in range(10)]
    assert said[1] == {"en": "One digit entered.", "ja": "一けた入力しました。"}[language]
    for text in said:
        assert not re.search(r"\d", text), text
    assert typed_message(12) == typed_message(-1) == keynav.TYPED_MANY


def test_keynav_spoken_label_without_symbols() -> None:
    assert spoken_label("住民票の写し\n300円", en) == "住民票の写し, 300円"
    assert spoken_label("✓ Only me", en) == "Only me, selected"
    assert spoken_label("✓ 本人のみ", ja) == "本人のみ、選択中"
    assert spoken_label("− Fewer", en) == "Fewer"
    assert spoken_label("+ More", en) == "More"
    assert announce(SCREEN, None, en) == ""
    assert announce([Item("✓ Everyone"), Item("Next")], 0, en) == "Everyone, selected, 1 of 2"


def test_keynav_messages_translated() -> None:
    source = (Path(keynav.__file__)).read_text()
    ids = set(re.findall(r'N_\(\s*"((?:[^"\\]|\\.)*)"\s*\)', source))
    assert len(ids) == 12
    japanese = translations("ja")
    english = (Path(keynav.__file__).parents[1] / "locale/en/LC_MESSAGES/kiosk.po").read_text()
    for message in ids:
        assert japanese.gettext(message) != message, f"ja lacks {message!r}"
        assert f'msgid "{message}"' in english, f"en lacks {message!r}"


def test_keypad_presence_logs_once_each_way(caplog: pytest.LogCaptureFixture) -> None:
    there = {"now": True}
    presence = KeypadPresence(Path("/dev/input/by-id/kbd"), exists=lambda _p: there["now"])
    caplog.set_level(logging.INFO, logger="kiosk.keypad")
    assert presence.check() is None  # present at start: nothing to say
    there["now"] = False
    assert presence.check() is Change.MISSING
    assert presence.check() is None and presence.check() is None
    there["now"] = True
    assert presence.check() is Change.BACK
    assert presence.check() is None
    records = [(r.levelname, getattr(r, "event", "")) for r in caplog.records]
    assert records == [("WARNING", "keypad.missing"), ("INFO", "keypad.back")]
    assert caplog.records[0].device == "/dev/input/by-id/kbd"  # type: ignore[attr-defined]


def test_keypad_presence_missing_at_start_and_stat_errors(tmp_path: Path) -> None:
    assert KeypadPresence(tmp_path / "nothing").check() is Change.MISSING

    def denied(_path: Path) -> bool:
        raise PermissionError("no")

    assert KeypadPresence(tmp_path, exists=denied).check() is Change.MISSING
    assert KeypadPresence(tmp_path).check() is None


def config_text(keypad: str) -> str:
    return f'[device]\nid = "d"\nfacility = "f"\n{keypad}'


def test_keypad_config_defaults_and_keys() -> None:
    default = parse_config(config_text(""), "t", Path("/")).keypad
    assert (default.enabled, default.device, default.call_staff_key) == (True, "", "*")
    assert default.check_seconds == 5.0
    chosen = parse_config(
        config_text(
            '[keypad]\nenabled = false\ndevice = "/dev/input/by-id/usb-kp-event-kbd"\n'
            'call_staff_key = "/"\ncheck_seconds = 2\n'
        ),
        "t",
        Path("/"),
    ).keypad
    assert chosen.device.endswith("event-kbd") and chosen.call_staff_key == "/"
    assert not chosen.enabled and chosen.check_seconds == 2


@pytest.mark.parametrize(
    "bad",
    ['device = "by-id/kbd"', 'call_staff_key = "5"', "check_seconds = 0", "colour = 1"],
)
def test_keypad_config_refuses_bad_values(bad: str) -> None:
    with pytest.raises(ConfigError, match="keypad"):
        parse_config(config_text(f"[keypad]\n{bad}\n"), "t", Path("/"))


def doctor_context(tmp_path: Path, keypad: str) -> DoctorContext:
    config = parse_config(config_text(keypad), "t", tmp_path)
    return DoctorContext(config_path=tmp_path / "device.toml", config=config)


def test_check_keypad_missing_is_a_warning(tmp_path: Path) -> None:
    gone = tmp_path / "usb-kp-event-kbd"
    result = check_keypad(doctor_context(tmp_path, f'[keypad]\ndevice = "{gone}"\n'))
    assert result.status is Status.WARN and str(gone) in result.finding
    assert "plug the keypad in" in result.action


def test_check_keypad_present_not_configured_or_not_a_device(tmp_path: Path) -> None:
    device = Path("/dev/null")  # a character device, as an input event node is
    present = check_keypad(doctor_context(tmp_path, f'[keypad]\ndevice = "{device}"\n'))
    assert present.status is Status.OK and "/dev/null" in present.finding
    assert check_keypad(doctor_context(tmp_path, "")).status is Status.OK
    off = check_keypad(doctor_context(tmp_path, "[keypad]\nenabled = false\n"))
    assert off.status is Status.OK and "off" in off.finding
    plain = tmp_path / "file"
    plain.write_text("")
    wrong = check_keypad(doctor_context(tmp_path, f'[keypad]\ndevice = "{plain}"\n'))
    assert wrong.status is Status.WARN and "not an input device" in wrong.finding
    unloaded = DoctorContext(config_path=tmp_path / "x.toml", config=None)
    assert check_keypad(unloaded).status is Status.WARN


def test_keynav_changed_words_only_what_the_press_changed() -> None:
    assert keynav.changed_words(["Copies", "1", "¥200"], ["Copies", "2", "¥200"]) == ["2"]
    assert keynav.changed_words(["a", "b"], ["a", "b"]) == []
    assert keynav.changed_words(["a", "Returning in 9 s"], ["a", ""]) == []  # hidden: not said
    assert keynav.changed_words(["a"], ["a", "b"]) == []  # rebuilt differently: nothing
