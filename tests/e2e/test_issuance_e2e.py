"""Certificate issuance at a counter kiosk end to end: the touchscreen under
Xvfb, a virtual My Number Card through real pcscd + vpcd, an in-process fake
central (which verifies the card's signature over the challenge and the
device id), the simulated payment terminal and a file printer spool."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_touchscreen import assert_not_blank, run_driver
from tests.harness.door import counter_config
from tests.harness.pcscd import Pcscd


@pytest.fixture
def counter(tmp_path: Path) -> Path:
    return counter_config(tmp_path)


def run(counter: Path, pcscd: Pcscd, kivy_env: dict[str, str], artifacts: Path,
        tmp_path: Path, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:  # fmt: skip
    scenario = {"config": str(counter), "artifacts": str(artifacts / "issuance"),
                "spool": str(tmp_path / "spool"), "cards": {"port": pcscd.ports[0]},
                "steps": steps}  # fmt: skip
    env = {**kivy_env, **pcscd.env}
    return run_driver(scenario, tmp_path, env, module="tests.e2e.issuance_driver")


def events(tmp_path: Path) -> list[tuple[str, dict[str, Any]]]:
    from sync.store import open_store

    with open_store(tmp_path / "device.db") as store:
        rows = store.query("SELECT type, data FROM outbox ORDER BY rowid")
        return [(r["type"], json.loads(r["data"])) for r in rows]


def pin(digits: str) -> list[dict[str, Any]]:
    return [*({"tap": f"pin.key_{d}"} for d in digits), {"tap": "pin.key_ok"}]


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_issuance_e2e_wrong_then_right_pin_prints_a_certificate(
    counter: Path, pcscd: Pcscd, kivy_env: dict[str, str], artifacts_dir: Path,
    tmp_path: Path, lang: str,
) -> None:  # fmt: skip
    steps: list[dict[str, Any]] = [
        {"shot": f"{lang}-attract"},
        {"tap": "attract.start_button"}, {"wait": "language"}, {"shot": f"{lang}-language"},
        {"tap": f"language.lang_{lang}"}, {"wait": "place_card"}, {"shot": f"{lang}-place-card"},
        {"insert": "mynumber"}, {"wait": "pin", "timeout": 20}, {"state": True},
        *pin("9999"), {"wait": "pin", "timeout": 20}, {"state": True},
        {"tap": "pin.key_1"}, {"state": True}, {"shot": f"{lang}-pin-wrong"},
        {"tap": "pin.key_clear"},
        *pin("1234"), {"wait": "kinds", "timeout": 20}, {"shot": f"{lang}-kinds"},
        {"tap": "kinds.kind_juminhyo"}, {"wait": "options"},
        {"tap": "options.option_household_all"}, {"shot": f"{lang}-options"},
        {"tap": "options.next_button"}, {"wait": "copies"},
        {"tap": "copies.plus_button"}, {"shot": f"{lang}-copies"},
        {"tap": "copies.next_button"}, {"wait": "confirm"}, {"shot": f"{lang}-confirm"},
        {"tap": "confirm.pay_button"}, {"wait": "take_card", "timeout": 20},
        {"shot": f"{lang}-take-card"}, {"state": True},
        {"remove": True}, {"wait": "thanks", "timeout": 10}, {"shot": f"{lang}-thanks"},
        {"tap": "thanks.done_button"}, {"wait": "attract"},
    ]  # fmt: skip
    lines = run(counter, pcscd, kivy_env, artifacts_dir, tmp_path, steps)
    states = [line for line in lines if "dots" in line]
    first_pin, wrong_pin, typing = states[0], states[1], states[2]
    assert first_pin["tries"] in ("残り3回", "Tries left: 3")
    assert wrong_pin["screen"] == "pin" and wrong_pin["tries"] in ("残り2回", "Tries left: 2")
    assert typing["dots"] == "●○○○"
    taps = [line for line in lines if "tapped" in line and "pin.key" in line["tapped"]]
    assert min(round(t["width_mm"], 1) for t in taps) >= 15
    assert min(round(t["height_mm"], 1) for t in taps) >= 15
    pdfs = sorted((tmp_path / "spool").glob("*.pdf"))
    assert len(pdfs) == 2 and pdfs[0].read_bytes().startswith(b"%PDF-")
    summary = next(line["summary"] for line in lines if "summary" in line)
    assert summary["balance"] == 400 and summary["outcomes"] == ["printed"]
    assert summary["open_sessions"] == 0
    recorded = events(tmp_path)
    assert ("issuance.issued", {"type": "juminhyo", "copies": 2, "fee_yen": 400}) in recorded
    assert ("issuance.pin_wrong", {"tries_left": 2}) in recorded
    assert "1234" not in json.dumps(recorded) and "9999" not in json.dumps(recorded)
    for line in lines:
        if "shot" in line:
            assert_not_blank(line["shot"])


def test_issuance_e2e_card_removed_mid_flow_and_failures(
    counter: Path, pcscd: Pcscd, kivy_env: dict[str, str], artifacts_dir: Path, tmp_path: Path
) -> None:
    begin: list[dict[str, Any]] = [{"tap": "attract.start_button"}, {"wait": "language"},
             {"tap": "language.lang_en"}, {"wait": "place_card"}]  # fmt: skip
    to_confirm: list[dict[str, Any]] = [
        *begin, {"insert": "mynumber"}, {"wait": "pin", "timeout": 20}, *pin("1234"),
        {"wait": "kinds", "timeout": 20}, {"tap": "kinds.kind_inkan"}, {"wait": "copies"},
        {"tap": "copies.next_button"}, {"wait": "confirm"},
    ]  # fmt: skip
    steps: list[dict[str, Any]] = [
        # Card removed on the PIN screen after two digits: aborted, PIN wiped.
        *begin, {"insert": "mynumber"}, {"wait": "pin", "timeout": 20},
        {"tap": "pin.key_1"}, {"tap": "pin.key_2"}, {"remove": True},
        {"wait": "notice", "timeout": 10}, {"state": True}, {"shot": "en-notice-card-removed"},
        {"tap": "notice.done_button"}, {"wait": "attract"},
        # Printer jammed before paying: nothing charged.
        {"printer": "jammed"}, *to_confirm, {"tap": "confirm.pay_button"},
        {"wait": "notice", "timeout": 20}, {"state": True}, {"shot": "en-notice-printer-jammed"},
        {"tap": "notice.done_button"}, {"wait": "take_card"}, {"remove": True},
        {"wait": "thanks", "timeout": 10}, {"tap": "thanks.done_button"}, {"wait": "attract"},
        # Central down at confirmation: the payment is voided.
        {"printer": "ok"}, {"central_fail": "confirm"}, *to_confirm,
        {"tap": "confirm.pay_button"}, {"wait": "notice", "timeout": 20}, {"state": True},
        {"shot": "en-notice-central-unreachable"}, {"tap": "notice.done_button"},
        {"wait": "take_card"}, {"remove": True}, {"wait": "thanks", "timeout": 10},
        {"tap": "thanks.done_button"}, {"wait": "attract"},
        # Idle on the PIN screen: countdown, then back to the start.
        *begin, {"insert": "mynumber"}, {"wait": "pin", "timeout": 20}, {"tap": "pin.key_5"},
        {"idle": 35}, {"shot": "en-pin-countdown"}, {"idle": 60},
        # Wiped, and the card left on the reader is asked for back.
        {"wait": "take_card"}, {"state": True}, {"remove": True}, {"wait": "thanks", "timeout": 10},
        {"tap": "thanks.done_button"}, {"wait": "attract"},
    ]  # fmt: skip
    lines = run(counter, pcscd, kivy_env, artifacts_dir, tmp_path, steps)
    states = [line for line in lines if "dots" in line]
    assert [s["notice"] for s in states[:3]] == [
        "card_removed", "printer_jammed", "central_unreachable",
    ]  # fmt: skip
    assert states[-1]["screen"] == "take_card" and states[-1]["dots"] == "○○○○"
    summary = next(line["summary"] for line in lines if "summary" in line)
    assert [kind for kind, *_ in summary["ledger"]] == ["captured", "voided"]
    assert summary["balance"] == 0 and summary["open_sessions"] == 0
    types = [t for t, _ in events(tmp_path)]
    for expected in ("issuance.aborted", "issuance.printer_unavailable", "issuance.voided"):
        assert expected in types
    assert not list((tmp_path / "spool").glob("*.pdf"))


def test_issuance_e2e_call_staff_without_connection(
    counter: Path, pcscd: Pcscd, kivy_env: dict[str, str], artifacts_dir: Path, tmp_path: Path
) -> None:
    """The counter kiosk's "Call staff": no sync agent has ever connected,
    so the shared staff screen says so and where to go (the fixed words: no
    ``[staff_call]`` place configured); Back returns to the start."""
    steps: list[dict[str, Any]] = [
        {"tap": "attract.top.access.staff_button"}, {"wait": "staff"}, {"state": True},
        {"shot": "ja-staff-unreachable"},
        {"tap": "staff.back_button"}, {"wait": "attract"},
    ]  # fmt: skip
    lines = run(counter, pcscd, kivy_env, artifacts_dir, tmp_path, steps)
    [state] = [line for line in lines if "dots" in line]
    assert state["step_name"] == "staff"
    assert state["title"] == "係員を呼び出せませんでした。"
    assert state["body"].startswith("受付へ")
    assert [(t, d.get("screen") or d.get("reason")) for t, d in events(tmp_path)] == [
        ("kiosk.staff_called", "issuance"),
        ("kiosk.staff_call_ended", "back"),
    ]
    assert_not_blank(next(line["shot"] for line in lines if "shot" in line))
