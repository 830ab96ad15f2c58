"""The device's systemd units against systemd's own sandboxing score
(``systemd-analyze security --offline=true``, systemd 252): no unit may score
worse than the exposure recorded in docs/provisioning.md ("Sandboxing"), and
the settings the threat model relies on are there."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
DOC = ROOT / "docs" / "provisioning.md"
REQUIRED = (
    "NoNewPrivileges=yes",
    "CapabilityBoundingSet=\n",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "RestrictAddressFamilies=",
    "SystemCallFilter=@system-service",
)


def recorded_scores() -> dict[str, float]:
    rows = re.findall(r"^\| `(city-kiosk-[a-z-]+\.service)` \| ([0-9.]+) \|", DOC.read_text(), re.M)
    return {unit: float(score) for unit, score in rows}


def exposure(unit: Path) -> float:
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", done.stdout)
    assert found, done.stdout + done.stderr
    return float(found.group(1))


UNIT_FILES = sorted(p.name for p in UNITS.glob("*.service"))


def test_deploy_units_every_unit_has_a_recorded_score() -> None:
    assert sorted(recorded_scores()) == UNIT_FILES


@pytest.mark.parametrize("name", UNIT_FILES)
def test_deploy_units_exposure_at_most_recorded(name: str) -> None:
    assert exposure(UNITS / name) <= recorded_scores()[name], name


@pytest.mark.parametrize("name", UNIT_FILES)
def test_deploy_units_sandboxing_settings_present(name: str) -> None:
    text = (UNITS / name).read_text()
    missing = [setting for setting in REQUIRED if setting not in text]
    assert missing == [], name
    # ProtectClock= would forbid reading the NTP state (clock_trusted).
    assert not re.search(r"^ProtectClock=", text, re.M)
