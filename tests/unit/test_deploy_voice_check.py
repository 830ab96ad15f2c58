"""``deploy doctor``'s voice check: synthesisers, the audio cache against
its manifest, and the sound device (ALSA's ``null`` device stands in for a
sound card)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy.checks import DoctorContext, Status
from deploy.checks.voice import check_voice
from sync.config import parse_config

pytestmark = pytest.mark.unit


def context(tmp_path: Path, voice: str = "") -> DoctorContext:
    text = f'[device]\nid = "d1"\nfacility = "f"\n[voice]\ndevice = "null"\n{voice}'
    return DoctorContext(tmp_path / "device.toml", parse_config(text, "t", tmp_path))


def built(tmp_path: Path, files: list[str], present: list[str]) -> None:
    cache = tmp_path / "voice-cache"
    cache.mkdir(exist_ok=True)
    (cache / "manifest.json").write_text(json.dumps({"voices": ["v"], "files": files}))
    for name in present:
        (cache / name).write_bytes(b"RIFF")


def test_voice_check_all_present_is_ok(tmp_path: Path) -> None:
    built(tmp_path, ["a.wav", "b.wav"], ["a.wav", "b.wav"])
    result = check_voice(context(tmp_path))
    assert result.status is Status.OK, result


def test_voice_check_never_built_fails_with_the_build_command(tmp_path: Path) -> None:
    result = check_voice(context(tmp_path))
    assert result.status is Status.FAIL
    assert "never built" in result.finding and "python -m kiosk voice build" in result.action


def test_voice_check_incomplete_cache_fails(tmp_path: Path) -> None:
    built(tmp_path, ["a.wav", "b.wav", "c.wav"], ["a.wav"])
    result = check_voice(context(tmp_path))
    assert result.status is Status.FAIL and "2 of 3 prompts missing" in result.finding


def test_voice_check_missing_synthesiser_fails(tmp_path: Path) -> None:
    built(tmp_path, [], [])
    result = check_voice(context(tmp_path, 'espeak_binary = "no-such-espeak"\n'))
    assert result.status is Status.FAIL and "no-such-espeak not found" in result.finding


def test_voice_check_device_that_does_not_open_fails(tmp_path: Path) -> None:
    built(tmp_path, [], [])
    ctx = context(tmp_path)
    assert ctx.config is not None
    voice = ctx.config.voice.model_copy(update={"device": "no_such_device_here"})
    ctx.config = ctx.config.model_copy(update={"voice": voice})
    result = check_voice(ctx)
    assert result.status is Status.FAIL and "cannot be opened" in result.finding


def test_voice_check_off_is_ok_and_simulated_output_warns(tmp_path: Path) -> None:
    assert check_voice(context(tmp_path, "enabled = false\n")).status is Status.OK
    built(tmp_path, [], [])
    assert check_voice(context(tmp_path, 'output = "sim"\n')).status is Status.WARN
