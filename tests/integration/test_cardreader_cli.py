"""``python -m cardreader`` as a person runs it, against the real pcscd + vpcd."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cardreader import certs
from cardreader.sim.cards import UidCard, UnknownCard
from cardreader.sim.profiles import DEMO_FELICA_IDM, mynumber_card
from cardreader.sim.testpki import TestPki, create_test_pki
from tests.harness.cards import SLOT_WAIT_S, card_present, inserted
from tests.harness.keys import write_test_key
from tests.harness.pcscd import READER_NAMES, Pcscd
from tests.harness.services import wait_until

ROOT = Path(__file__).resolve().parents[2]
PIN = "4729"


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return create_test_pki()


@pytest.fixture(scope="module")
def device_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A device configuration naming the test fleet key (the CLI has no default)."""
    folder = tmp_path_factory.mktemp("cardreader-cli")
    key = write_test_key(folder / "credential.key")
    path = folder / "device.toml"
    path.write_text(
        f'[device]\nid = "cli"\nfacility = "fac"\n[reader]\ncredential_key_file = "{key}"\n'
    )
    return path


@pytest.fixture(autouse=True)
def _config(device_config: Path) -> None:
    CONFIG[:] = ["--config", str(device_config)]


CONFIG: list[str] = []
NEEDS_CONFIG = {"readers", "watch", "info", "auth"}


def run(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    config = CONFIG if args[0] in NEEDS_CONFIG and "--help" not in args else []
    return subprocess.run(
        [sys.executable, "-m", "cardreader", *args, *config],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
    )


def test_cli_readers_lists_both_slots(pcscd: Pcscd) -> None:
    done = run("readers", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["readers"] == list(READER_NAMES)


def test_cli_info_my_number_card(pcscd: Pcscd, pki: TestPki) -> None:
    with inserted(mynumber_card(pki, pin=PIN), pcscd):
        done = run("info", "--json", "--reader", READER_NAMES[0])
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["kind"] == "mynumber"
    assert info["reference"].startswith("j2-")
    assert info["alternate_reference"].startswith("j1-")
    assert info["pin_tries_left"] == 3
    assert info["certificate"]["subject"].startswith("CN=TEST")
    assert info["certificate"]["expired"] is False


def test_cli_info_member_and_unknown_cards(pcscd: Pcscd) -> None:
    with inserted(UidCard(uid=DEMO_FELICA_IDM), pcscd):
        done = run("info", "--reader", READER_NAMES[0])
    assert done.returncode == 0, done.stderr
    assert "kind: felica" in done.stdout and "reference: m1-" in done.stdout
    assert DEMO_FELICA_IDM.hex() not in done.stdout.lower()
    with inserted(UnknownCard(), pcscd):
        done = run("info", "--reader", READER_NAMES[0])
    assert done.returncode == 13
    assert "not supported" in done.stderr


def test_cli_auth_signs_and_reports_pin_outcomes(
    pcscd: Pcscd, pki: TestPki, tmp_path: Path
) -> None:
    challenge = "00112233445566778899aabbccddeeff"
    card = mynumber_card(pki, pin=PIN, state_path=tmp_path / "pin.json")
    args = ("auth", "--pin-stdin", "--challenge", challenge, "--reader", READER_NAMES[0])
    with inserted(card, pcscd):
        ok = run(*args, "--json", stdin=PIN + "\n")
        wrong = run(*args, stdin="0000\n")
        badly_typed = run(*args, stdin="47a9\n")
        no_stdin_flag = run("auth", "--challenge", challenge)
    assert ok.returncode == 0, ok.stderr
    out = json.loads(ok.stdout)
    der = bytes.fromhex(out["certificate_der_hex"])
    assert certs.verify_signature(der, bytes.fromhex(challenge), bytes.fromhex(out["signature"]))
    assert wrong.returncode == 14 and "2 tries left" in wrong.stderr, wrong.stderr
    assert badly_typed.returncode == 18, badly_typed.stderr
    assert "nothing was sent" in badly_typed.stderr
    assert no_stdin_flag.returncode == 2, no_stdin_flag.stderr
    for done in (ok, wrong, badly_typed):
        assert PIN not in done.stdout + done.stderr
        assert "47a9" not in done.stderr
    blocked = mynumber_card(pki, pin=PIN, tries=0)
    with inserted(blocked, pcscd):
        done = run(*args, stdin=PIN + "\n")
    assert done.returncode == 15 and "city office" in done.stderr, done.stderr
    assert blocked.verify_attempts == 0
    with inserted(mynumber_card(pki, pin=PIN, variant="expired"), pcscd):
        done = run(*args, stdin=PIN + "\n")
    assert done.returncode == 16 and "expired" in done.stderr, done.stderr


def test_cli_without_pcscd_or_reader(pcscd: Pcscd, tmp_path: Path) -> None:
    done = run("info", env={"PCSCLITE_CSOCK_NAME": str(tmp_path / "no-such.sock")})
    assert done.returncode == 10
    assert "pcscd" in done.stderr and "Traceback" not in done.stderr
    done = run("info", "--reader", "No Such Reader")
    assert done.returncode == 11 and "no card reader" in done.stderr
    done = run("info", "--reader", READER_NAMES[1])
    assert done.returncode == 12 and "place the card" in done.stderr


def test_cli_sim_plays_card_driven_from_stdin(pcscd: Pcscd, tmp_path: Path) -> None:
    sim = subprocess.Popen(
        [sys.executable, "-m", "cardreader", "sim", "--profile", "mynumber", "--pin", PIN,
         "--pki", str(tmp_path / "pki"), "--port", str(pcscd.ports[1]), "--control", "stdin"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=ROOT,
    )  # fmt: skip
    assert sim.stdin is not None and sim.stdout is not None
    try:
        assert sim.stdout.readline().strip() == "inserted mynumber"
        wait_until(lambda: card_present(READER_NAMES[1]), SLOT_WAIT_S, "sim card present")
        done = run("info", "--json", "--reader", READER_NAMES[1])
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["kind"] == "mynumber"
        sim.stdin.write("remove\n")
        sim.stdin.flush()
        assert sim.stdout.readline().strip() == "removed"
        wait_until(lambda: not card_present(READER_NAMES[1]), SLOT_WAIT_S, "sim card gone")
        sim.stdin.write("quit\n")
        sim.stdin.flush()
        assert sim.wait(10) == 0
    finally:
        if sim.poll() is None:
            sim.kill()
            sim.wait()
    assert (tmp_path / "pki" / "README-TEST-MATERIAL.txt").exists()


def test_cli_sim_without_vpcd_reports_clearly(tmp_path: Path) -> None:
    from tests.harness.services import free_port

    done = run("sim", "--profile", "felica", "--port", str(free_port()))
    assert done.returncode == 10 and "vpcd" in done.stderr


def test_cli_watch_prints_identified_events(pcscd: Pcscd) -> None:
    watch = subprocess.Popen(
        [sys.executable, "-m", "cardreader", "watch", "--json", "--identify", "--count", "4",
         "--reader", READER_NAMES[0], *CONFIG],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert watch.stdout is not None
    try:
        assert json.loads(watch.stdout.readline())["event"] == "reader_added"
        with inserted(UnknownCard(), pcscd):
            unknown = json.loads(watch.stdout.readline())
        assert json.loads(watch.stdout.readline())["event"] == "removed"
        with inserted(UidCard(uid=DEMO_FELICA_IDM), pcscd):
            felica = json.loads(watch.stdout.readline())
        assert watch.wait(10) == 0
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    assert unknown == {"event": "inserted", "reader": READER_NAMES[0], "kind": "unknown",
                       "reference": None}  # fmt: skip
    assert felica["kind"] == "felica" and felica["reference"].startswith("m1-")


def test_cli_testpki_writes_clearly_named_test_material(tmp_path: Path) -> None:
    done = run("testpki", str(tmp_path), "--json")
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert all("TEST" in n for n in names), names
    assert "not issued by J-LIS" in (tmp_path / "README-TEST-MATERIAL.txt").read_text()
    from cryptography import x509

    root = x509.load_pem_x509_certificate((tmp_path / "TEST-root-ca.pem").read_bytes())
    assert "TEST" in root.subject.rfc4514_string()
    assert root.public_key().key_size == 2048  # type: ignore[union-attr]


def test_cli_every_command_has_help_and_docs() -> None:
    docs = (ROOT / "docs" / "cardreader.md").read_text()
    for command in ("readers", "watch", "info", "auth", "sim", "testpki", "keygen"):
        done = run(command, "--help")
        assert done.returncode == 0 and "usage:" in done.stdout
        assert f"python -m cardreader {command}" in docs
    for code in range(10, 19):
        assert f"| {code} |" in docs
