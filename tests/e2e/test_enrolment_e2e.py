"""Card enrolment on the check-in touchscreen, end to end under Xvfb: the
person opens it from the attract screen, types the code, taps a virtual
member card through the real pcscd + vpcd, and the (fake, in-process)
central receives exactly the reference check-in computes for that card.
Every enrolment screen is captured at 800x480 and 1280x800."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cardreader.credential import member_reference
from sync.store import open_store
from tests.e2e.test_touchscreen import assert_not_blank, run_driver
from tests.harness.keys import TEST_KEY, write_test_key
from tests.harness.pcscd import Pcscd

CODE = "48291736"
UID = "0102030405060799"


def device_config(tmp_path: Path) -> Path:
    path = tmp_path / "device.toml"
    path.write_text(
        '[device]\nid = "e2e-door"\nfacility = "gym"\nname = "Gym"\n'
        f'[store]\npath = "{tmp_path / "device.db"}"\n'
        f'[reader]\ncredential_key_file = "{write_test_key(tmp_path / "credential.key")}"\n'
        f'[lock]\nsocket = "{tmp_path / "no-lockctl.sock"}"\npin_factory = "mock"\n'
        '[[doors]]\nid = "room-a"\nname = "Room A"\nrelay_pin = 17\n'
        # The fake central is injected; the URL is what the config requires.
        '[central]\nurl = "https://central.invalid"\n'
        "[enrolment]\nenabled = true\n"
    )
    return path


def events(tmp_path: Path) -> list[tuple[str, dict[str, object]]]:
    with open_store(tmp_path / "device.db") as store:
        rows = store.query("SELECT type, data FROM outbox ORDER BY seq")
        return [(r["type"], json.loads(r["data"])) for r in rows]


@pytest.mark.parametrize("size", [(800, 480), (1280, 800)], ids=["800x480", "1280x800"])
def test_enrolment_code_and_card_through_pcscd(
    tmp_path: Path,
    pcscd: Pcscd,
    kivy_env: dict[str, str],
    artifacts_dir: Path,
    size: tuple[int, int],
) -> None:
    tag = f"{size[0]}x{size[1]}"
    steps = [
        {"shot": f"{tag}-attract"},
        {"tap": "attract.mode_button"}, {"wait": "enrol_code"}, {"shot": f"{tag}-code-empty"},
        *[{"tap": f"enrol_code.key_{d}"} for d in CODE],
        {"state": True}, {"shot": f"{tag}-code-typed"},
        {"tap": "enrol_code.key_ok"}, {"wait": "enrol_wait"}, {"shot": f"{tag}-wait"},
        {"release": True}, {"wait": "enrol_card"}, {"state": True}, {"shot": f"{tag}-card"},
        {"insert": "unknown"}, {"wait": "enrol_card"}, {"state": True},
        {"shot": f"{tag}-card-unsupported"}, {"remove": True},
        {"idle": 35}, {"shot": f"{tag}-card-countdown"},
        {"tap": "enrol_card.top.countdown.continue_button"},
        {"insert": "felica", "uid": UID}, {"wait": "enrol_result", "timeout": 10},
        {"state": True}, {"shot": f"{tag}-result-enrolled"}, {"remove": True},
        {"central": True},
        {"tap": "enrol_result.done_button"}, {"wait": "attract"}, {"state": True},
    ]  # fmt: skip
    scenario = {
        "config": str(device_config(tmp_path)),
        "artifacts": str(artifacts_dir / "enrolment"),
        "size": list(size),
        "cards": {"port": pcscd.ports[0]},
        "enrolment": {"codes": {CODE: "en"}, "hold": True},
        "steps": steps,
    }
    lines = run_driver(scenario, tmp_path, {**kivy_env, **pcscd.env})

    received = next(line for line in lines if "received" in line)
    # Exactly the reference check-in computes for this card, and nothing else.
    assert received["received"] == [[member_reference(TEST_KEY, bytes.fromhex(UID)), "member_card"]]
    assert received["cancelled"] == 0
    typed, card, unsupported, enrolled, back = [line for line in lines if "code" in line]
    assert typed["code"] == "4829 1736" and typed["language"] == "ja"
    assert card["language"] == "en"  # the member's preferred language
    assert unsupported["notice"].startswith("This card cannot be enrolled")
    assert enrolled["title"] == "Your card is enrolled"
    assert back["screen"] == "attract" and back["language"] == "ja"
    for tap in (line for line in lines if "tapped" in line):
        assert round(tap["height_mm"], 2) >= 15 and round(tap["width_mm"], 2) >= 15, tap
    for shot in (line["shot"] for line in lines if "shot" in line):
        assert_not_blank(shot)

    recorded = events(tmp_path)
    assert recorded == [
        ("enrolment.started", {}),
        ("enrolment.enrolled", {"card_kind": "member_card"}),
    ]  # and no check-in: a card tapped for enrolment opens no door
    assert CODE not in (tmp_path / "driver.err").read_text()  # the app's log
    assert UID.lower() not in json.dumps(recorded).lower()


def test_enrolment_refusal_retry_and_cancel(
    tmp_path: Path, kivy_env: dict[str, str], artifacts_dir: Path
) -> None:
    steps = [
        {"tap": "attract.mode_button"}, {"wait": "enrol_code"},
        *[{"tap": f"enrol_code.key_{d}"} for d in "11112222"],
        {"tap": "enrol_code.key_ok"}, {"wait": "enrol_result"}, {"state": True},
        {"shot": "800x480-result-code-invalid"},
        {"tap": "enrol_result.retry_button"}, {"wait": "enrol_code"}, {"state": True},
        *[{"tap": f"enrol_code.key_{d}"} for d in CODE],
        {"tap": "enrol_code.key_ok"}, {"wait": "enrol_card"},
        {"tap": "enrol_card.cancel_bar.cancel_button"}, {"wait": "attract"}, {"central": True},
    ]  # fmt: skip
    scenario = {
        "config": str(device_config(tmp_path)),
        "artifacts": str(artifacts_dir / "enrolment"),
        "size": [800, 480],
        "enrolment": {"codes": {CODE: "ja"}},
        "steps": steps,
    }
    lines = run_driver(scenario, tmp_path, kivy_env)
    refused, again = [line for line in lines if "code" in line]
    assert refused["title"] == "登録番号を受け付けられませんでした"
    assert refused["next"] == "番号を確かめてもう一度入力してください。"
    assert again["screen"] == "enrol_code" and again["code"] == "○○○○ ○○○○"
    central = next(line for line in lines if "received" in line)
    assert central == {**central, "received": [], "cancelled": 1}  # the ticket was cancelled
    assert [t for t, _ in events(tmp_path)] == ["enrolment.refused", "enrolment.started"]
    assert_not_blank(next(line["shot"] for line in lines if "shot" in line))
