"""Certificate issuance end to end through the real thing: the counter
touchscreen under Xvfb, a virtual My Number Card through real pcscd + vpcd,
central's issuance listener (its own process, mutual TLS with the device's
fleet certificate, the test JPKI root and CRL, the reference registry), the
simulated payment terminal and a private CUPS scheduler whose queue prints
to files. One scenario per central configuration (open / closed), many
residents in a row, as at a real counter."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from cardreader import apdu
from tests.e2e.test_issuance_e2e import events, pin
from tests.e2e.test_touchscreen import run_driver
from tests.harness.cups import PrivateCups
from tests.harness.issuance import RunningIssuance, start_issuance_listener
from tests.harness.keys import write_test_key
from tests.harness.pcscd import Pcscd

DEVICE = "e2e-counter"
PIN = "1234"


@dataclass
class Setup:
    root: Path
    listener: RunningIssuance
    device_config: Path

    @property
    def pki_dir(self) -> Path:
        return self.listener.pki_dir


def _start(tmp_path: Path, cups: PrivateCups, always_open: bool) -> Iterator[Setup]:
    listener = start_issuance_listener(tmp_path, DEVICE, always_open=always_open)
    identity = listener.device_dir
    config = tmp_path / "counter.toml"
    config.write_text(
        f'[device]\nid = "{DEVICE}"\nfacility = "city-hall"\nrole = "counter"\n'
        'name = "City hall"\n[logging]\nlevel = "DEBUG"\n'
        f'[store]\npath = "{tmp_path / "device.db"}"\n'
        f'[central]\nurl = "{listener.url}"\ntimeout_seconds = 3\n'
        f'[central.tls]\nca_file = "{listener.paths.fleet_ca}"\n'
        f'cert_file = "{identity / "device.pem"}"\nkey_file = "{identity / "device.key"}"\n'
        f'[reader]\ncredential_key_file = "{write_test_key(tmp_path / "credential.key")}"\n'
        '[issuance]\npayment_backend = "sim"\nprinter_backend = "cups"\n'
        f'cups_queue = "{cups.queue}"\n'
        f'cups_server = "{cups.server}"\nsound = false\n'
    )
    try:
        yield Setup(tmp_path, listener, config)
    finally:
        listener.stop()


@pytest.fixture
def open_central(tmp_path: Path, cups: PrivateCups) -> Iterator[Setup]:
    yield from _start(tmp_path, cups, always_open=True)


@pytest.fixture
def closed_central(tmp_path: Path, cups: PrivateCups) -> Iterator[Setup]:
    yield from _start(tmp_path, cups, always_open=False)


def drive(setup: Setup, cups: PrivateCups, pcscd: Pcscd, kivy_env: dict[str, str],
          artifacts: Path, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:  # fmt: skip
    scenario = {
        "config": str(setup.device_config), "artifacts": str(artifacts / "issuance-real"),
        "real_central": True, "pki_dir": str(setup.pki_dir), "cups_out": str(cups.out),
        "cups": {"server": cups.server, "queue": cups.queue},
        "central_pid": setup.listener.process.pid, "cards": {"port": pcscd.ports[0]},
        "steps": steps,
    }  # fmt: skip
    env = {**kivy_env, **pcscd.env}
    return run_driver(scenario, setup.root, env, module="tests.e2e.issuance_driver")


BEGIN: list[dict[str, Any]] = [
    {"tap": "attract.start_button"}, {"wait": "language"},
    {"tap": "language.lang_ja"}, {"wait": "place_card"},
]  # fmt: skip
FINISH: list[dict[str, Any]] = [
    {"wait": "take_card", "timeout": 30}, {"remove": True}, {"wait": "thanks", "timeout": 10},
    {"tap": "thanks.done_button"}, {"wait": "attract"},
]  # fmt: skip


def refused(variant: str, shot: str, tries: int | None = None, with_pin: bool = True
            ) -> list[dict[str, Any]]:  # fmt: skip
    """A resident whose card or record is refused: a notice, then the card back."""
    card: dict[str, Any] = {"insert": "mynumber", "variant": variant}
    if tries is not None:
        card["tries"] = tries
    typed = [{"wait": "pin", "timeout": 20}, *pin(PIN)] if with_pin else []
    return [
        *BEGIN, card, *typed, {"wait": "notice", "timeout": 30}, {"state": True},
        {"shot": shot}, {"tap": "notice.done_button"}, *FINISH,
    ]  # fmt: skip


def order_inkan(variant: str = "valid") -> list[dict[str, Any]]:
    return [
        *BEGIN, {"insert": "mynumber", "variant": variant}, {"wait": "pin", "timeout": 20},
        *pin(PIN), {"wait": "kinds", "timeout": 30}, {"tap": "kinds.kind_inkan"},
        {"wait": "copies"}, {"tap": "copies.next_button"}, {"wait": "confirm"},
    ]  # fmt: skip


def test_issuance_real_central_prints_and_refuses_each_bad_case(
    open_central: Setup, cups: PrivateCups, pcscd: Pcscd, kivy_env: dict[str, str],
    artifacts_dir: Path,
) -> None:  # fmt: skip
    log_start = len(pcscd.log_text())
    steps: list[dict[str, Any]] = [
        # 1. A resident: wrong PIN once, then the right one; 住民票 printed by CUPS.
        *BEGIN, {"insert": "mynumber", "variant": "valid"}, {"wait": "pin", "timeout": 20},
        *pin("9999"), {"wait": "pin", "timeout": 20}, {"state": True},
        *pin(PIN), {"wait": "kinds", "timeout": 30}, {"shot": "ja-kinds-real"},
        {"tap": "kinds.kind_juminhyo"}, {"wait": "options"}, {"tap": "options.next_button"},
        {"wait": "copies"}, {"tap": "copies.next_button"}, {"wait": "confirm"},
        {"tap": "confirm.pay_button"}, {"wait": "take_card", "timeout": 40},
        {"state": True}, {"remove": True}, {"wait": "thanks", "timeout": 10},
        {"tap": "thanks.done_button"}, {"wait": "attract"},
        # 2-6. Refusals: expired (before the PIN), blocked PIN (before the PIN),
        # revoked, unknown resident, ineligible resident.
        *refused("expired", "ja-notice-expired", with_pin=False),
        *refused("valid", "ja-notice-blocked", tries=0, with_pin=False),
        *refused("revoked", "ja-notice-revoked"),
        *refused("unknown", "ja-notice-unknown"),
        *refused("ineligible", "ja-notice-use-counter"),
        # 7. Out of paper while printing: the job is withdrawn and refunded.
        {"printer": "out_of_paper"}, *order_inkan(), {"tap": "confirm.pay_button"},
        {"wait": "notice", "timeout": 60}, {"state": True}, {"shot": "ja-notice-paper-out"},
        {"tap": "notice.done_button"}, *FINISH, {"printer": "ok"},
        # 8. Central stops answering after the resident chose: voided or never charged.
        *order_inkan(), {"pause_central": True}, {"tap": "confirm.pay_button"},
        {"wait": "notice", "timeout": 60}, {"state": True}, {"pause_central": False},
        {"tap": "notice.done_button"}, *FINISH,
    ]  # fmt: skip
    cups.set_printer("ok")
    lines = drive(open_central, cups, pcscd, kivy_env, artifacts_dir, steps)
    states = [line for line in lines if "dots" in line]
    assert states[0]["tries"] in ("残り2回", "Tries left: 2")
    notices = [s["notice"] for s in states if s.get("notice")]
    assert notices == [
        "card_expired", "pin_blocked", "certificate_revoked", "resident_unknown",
        "use_counter", "print_failed", "central_unreachable",
    ]  # fmt: skip

    # The certificate printed by CUPS: right kind, the issue number central
    # recorded, the municipality, and no 12-digit number anywhere.
    (printed,) = cups.printed()
    text = "".join(page.extract_text() for page in PdfReader(printed).pages)
    db = sqlite3.connect(open_central.root / "central" / "central.db")
    numbers = [r[0] for r in db.execute("SELECT issue_number FROM issuance_documents")]
    statuses = dict(db.execute("SELECT status, COUNT(*) FROM issuance_orders GROUP BY status"))
    db.close()
    assert "住民票" in text and any(n in text for n in numbers)
    assert not re.search(r"(?<!\d)\d{12}(?!\d)", text.replace(" ", ""))
    assert statuses.get("printed") == 1 and "confirmed" not in statuses

    # Money: the resident paid for one certificate; the paper-out one was
    # refunded, and the outage one voided or never charged.
    recorded = events(open_central.root)
    issued = [data for kind, data in recorded if kind == "issuance.issued"]
    assert issued == [{"type": "juminhyo", "copies": 1, "fee_yen": issued[0]["fee_yen"]}]
    summary = next(line["summary"] for line in lines if "summary" in line)
    assert summary["balance"] == issued[0]["fee_yen"] > 0
    kinds = [kind for kind, *_ in summary["ledger"]]
    assert kinds.count("refunded") == 1 and kinds.count("captured") - 2 == kinds.count("voided")

    # Events: type, copies and fee only; the PIN nowhere (events, our log).
    types = {t for t, _ in recorded}
    refunded = [data for kind, data in recorded if kind == "issuance.refunded"]
    assert [(r["type"], r["copies"], r["reason"]) for r in refunded] == [
        ("inkan", 1, "out_of_paper")
    ]
    assert {"issuance.refused", "issuance.refunded", "issuance.central_unreachable"} <= types
    ours = (open_central.root / "driver.err").read_text() + json.dumps(recorded)
    for form in (PIN, PIN.encode().hex(), PIN.encode().hex(" ")):
        assert form not in ours.lower()
    # Only the JPKI application was selected on the wire (pcscd's APDU log).
    wire = pcscd.log_text()[log_start:].upper()
    assert apdu.JPKI_AID.hex(" ").upper() in wire
    for aid in apdu.FORBIDDEN_AIDS:
        assert aid.hex(" ").upper() not in wire and aid[:8].hex(" ").upper() not in wire


def test_issuance_real_central_outside_hours_shows_next_opening(
    closed_central: Setup, cups: PrivateCups, pcscd: Pcscd, kivy_env: dict[str, str],
    artifacts_dir: Path,
) -> None:  # fmt: skip
    steps = refused("valid", "ja-notice-outside-hours")
    lines = drive(closed_central, cups, pcscd, kivy_env, artifacts_dir, steps)
    (notice,) = [line for line in lines if line.get("notice")]
    assert notice["notice"] == "outside_hours"
    assert re.search(r"\d{1,2}:\d{2}", notice["body"] + notice["title"])
    assert cups.printed() == []
