"""Every screen of both touchscreens and card enrolment, on every display
profile (kiosk/touch/profiles.py), in every language with a catalogue and a
pseudo language of long, unbreakable words (``x-long``), in normal and larger
text (and once in high contrast), checked from widget
geometry: no overlapping text or buttons, no clipped text, buttons at least
15 mm at the panel's density, nothing outside the window.

One Xvfb of the panel's size and one Kivy process per profile and
touchscreen (``KIVY_DPI`` is read at start), two at a time. Screenshots go to
``tests/artifacts/screens/`` for ja, en, ne, vi, fil and x-long (all languages
with ``FULL_SCREENSHOTS=1``), with ``violations.txt`` (the figures, and what
failed).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from kiosk.touch.profiles import PROFILES, SVGA, DisplayProfile
from tests.harness.keys import write_test_key
from tests.harness.xvfb import Xvfb

ROOT = Path(__file__).resolve().parents[2]
SHOT_LANGUAGES = ["ja", "en", "ne", "vi", "fil", "x-long"]
# Whole matrix: 3 minutes on a 2-core machine, measured as the processor time
# of its processes (Kivy drivers and Xvfb) over 2 cores, so that other load
# on the machine does not decide the result (figures in docs/kiosk.md).
BUDGET_SECONDS = 180
CORES = 2


def write_configs(tmp_path: Path) -> dict[str, Path]:
    key = write_test_key(tmp_path / "credential.key")
    door, counter = tmp_path / "door.toml", tmp_path / "counter.toml"
    door.write_text(
        '[device]\nid = "m-door"\nfacility = "gym"\nname = "Gym"\n'
        f'[store]\npath = "{tmp_path / "door.db"}"\n[reader]\ncredential_key_file = "{key}"\n'
        f'[lock]\nsocket = "{tmp_path / "no-lockctl.sock"}"\npin_factory = "mock"\n'
        '[[doors]]\nid = "room-a"\nname = "Room A"\nrelay_pin = 17\n'
        '[central]\nurl = "https://central.invalid"\n[enrolment]\nenabled = true\n'
    )
    counter.write_text(
        '[device]\nid = "m-counter"\nfacility = "city-hall"\nrole = "counter"\nname = "City hall"\n'
        f'[store]\npath = "{tmp_path / "counter.db"}"\n[reader]\ncredential_key_file = "{key}"\n'
        '[issuance]\npayment_backend = "sim"\nprinter_backend = "file"\n'
        f'spool = "{tmp_path / "spool"}"\nsound = false\n'
    )
    return {"checkin": door, "issuance": counter}


def run_profile(profile: DisplayProfile, app: str, configs: dict[str, Path], tmp_path: Path,
                artifacts: Path) -> list[dict[str, Any]]:  # fmt: skip
    work = tmp_path / f"{profile.name}-{app}"
    xvfb = Xvfb(work / "xvfb", width=profile.width, height=profile.height).start()
    try:
        shots: Any = "all" if os.environ.get("FULL_SCREENSHOTS") == "1" else SHOT_LANGUAGES
        job = {"profile": profile.name, "app": app, "config": str(configs[app]),
               "artifacts": str(artifacts), "shots": shots}  # fmt: skip
        if profile is SVGA:  # the old 800x600 bug: its layout, not every language again
            job["languages"] = ["ja", "en"]
        (work / "job.json").write_text(json.dumps(job))
        env = {
            **os.environ, **xvfb.env, **profile.env(), "KIVY_NO_ARGS": "1",
            "KIVY_NO_FILELOG": "1", "KIVY_HOME": str(work / "kivy"),
            "XDG_CACHE_HOME": str(work / "cache"), "PYTHONPATH": str(ROOT),
        }  # fmt: skip
        result = subprocess.run(
            [sys.executable, "-m", "tests.e2e.screen_matrix_driver", str(work / "job.json")],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=170, check=False,
        )  # fmt: skip
    finally:
        xvfb.stop()
    (work / "driver.err").write_text(result.stderr)
    lines = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    assert result.returncode == 0 and lines and lines[-1].get("done"), (
        profile.name, app, lines[-1:], result.stderr[-3000:],
    )  # fmt: skip
    return [{**line, "profile": profile.name, "app": app} for line in lines]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def languages(states: list[dict[str, Any]]) -> set[str]:
    return {line["language"] for line in states}


def scrolling(states: list[dict[str, Any]]) -> str:
    """Where content is taller than the panel and scrolls (allowed, but worth
    a look): counts per profile and text size."""
    counts: dict[str, int] = {}
    for line in states:
        if line.get("scrolls"):
            key = f"{line['profile']} {'larger' if line['large'] else 'normal'}"
            counts[key] = counts.get(key, 0) + 1
    return "scrolls: " + (", ".join(f"{k}: {n}" for k, n in sorted(counts.items())) or "none")


def violations_text(lines: list[dict[str, Any]]) -> str:
    out = []
    for line in lines:
        for violation in line.get("violations", []):
            size = "larger" if line["large"] else "normal"
            out.append(f"{line['app']}/{line['state']} [{line['profile']} {line['language']}"
                       f" {size}]: {violation}")  # fmt: skip
    return "\n".join(out)


# Its performance gate is the processor time above, not the wall clock: with
# the suite's other worker (scripts/test runs two) on the same two cores the
# matrix can take longer than the default 300 s per test.
@pytest.mark.timeout(600)
def test_screen_matrix_every_screen_fits_every_profile(tmp_path: Path, artifacts_dir: Path) -> None:
    configs = write_configs(tmp_path)
    artifacts = artifacts_dir / "screens"
    shutil.rmtree(artifacts, ignore_errors=True)  # Window.screenshot never overwrites
    jobs = [(p, app) for p in (*PROFILES, SVGA) for app in ("checkin", "issuance")]
    started, cpu_before = time.monotonic(), children_cpu()
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(
            pool.map(lambda j: run_profile(j[0], j[1], configs, tmp_path, artifacts), jobs)
        )
    elapsed, cpu = time.monotonic() - started, children_cpu() - cpu_before
    lines = [line for result in results for line in result]
    states = [line for line in lines if "state" in line]
    errors = [line for line in lines if "error" in line]
    assert not errors, errors
    summary = (
        f"screen matrix: {len(states)} states, {len(languages(states))} languages,"
        f" {elapsed:.1f} s wall, {cpu:.1f} s processor time ({cpu / CORES:.1f} s on {CORES} cores)"
    )
    print(summary)  # the figure docs/kiosk.md quotes
    report = violations_text(states)
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / "violations.txt").write_text(f"{summary}\n{scrolling(states)}\n{report}\n")
    assert not report, "\n" + report
    shots = [line["shot"] for line in states if "shot" in line]
    assert len(shots) >= len(jobs) * 2, "screenshots missing"
    assert cpu / CORES < BUDGET_SECONDS, summary


def test_screen_matrix_checker_catches_overlap_and_clipping(
    tmp_path: Path, kivy_env: dict[str, str]
) -> None:
    """The checker is not blind: two buttons on top of each other, a label
    whose text does not fit and a button under 15 mm are all reported."""
    script = tmp_path / "negative.py"
    script.write_text(
        "from kivy.config import Config\n"
        "Config.set('graphics', 'width', '400'); Config.set('graphics', 'height', '300')\n"
        "from kivy.base import EventLoop\n"
        "from kivy.core.window import Window\n"
        "from kivy.uix.button import Button\n"
        "from kivy.uix.floatlayout import FloatLayout\n"
        "from kivy.uix.label import Label\n"
        "from tests.e2e.layout_check import check_tree\n"
        "root = FloatLayout()\n"
        "root.add_widget(Button(text='A', size_hint=(None, None), size=(200, 200), pos=(0, 0)))\n"
        "root.add_widget(Button(text='B', size_hint=(None, None), size=(200, 200), pos=(50, 50)))\n"
        "root.add_widget(Label(text='a long text that cannot fit', font_size=40,"
        " size_hint=(None, None), size=(60, 20), pos=(300, 250)))\n"
        "root.add_widget(Button(text='s', size_hint=(None, None), size=(20, 20), pos=(600, 10)))\n"
        "Window.add_widget(root)\n"
        "for _ in range(5):\n"
        "    EventLoop.idle()\n"
        "print('\\n'.join(check_tree(root, 15.0).violations))\n"
    )
    result = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=kivy_env,
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    found = result.stdout
    assert (
        "overlap: Button('A') and Button('B')" in found
        or "overlap: Button('B') and Button('A')" in found
    ), found
    assert "clipped: Label('a long text that cannot" in found, found
    assert "small: Button('s')" in found, found
    assert "outside: Button('s')" in found, found
