"""The voice guidance's check: synthesisers present, audio cache complete,
sound device openable (``[voice]``; docs/voice.md).

Deploy imports no kiosk code: the cache's ``manifest.json`` (written by
``python -m kiosk voice build``) lists the files a complete cache has, and
this check only looks that each exists.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

from deploy.checks import CheckResult, DoctorContext, fail, not_checked, ok, warn
from sync.config import VoiceSection

NAME = "voice"
# Where ``kiosk.voice.voices`` finds Open JTalk's voice unless configured.
PACKAGED_VOICE = Path("htsvoice") / "mei_normal.htsvoice"
PROBE_RATE = 48000


def check_voice(ctx: DoctorContext) -> CheckResult:
    if ctx.config is None:
        return not_checked(NAME)
    voice = ctx.config.voice
    if not voice.enabled:
        return ok(NAME, "voice guidance is off ([voice] enabled = false)")
    missing = synthesiser_problems(voice)
    if missing:
        return fail(
            NAME,
            "synthesiser missing: " + "; ".join(missing),
            "install the Debian packages espeak-ng, open-jtalk and open-jtalk-mecab-naist-jdic"
            " and the pinned pyopenjtalk-plus (scripts/bootstrap), or set the [voice] paths",
        )
    cache = cache_problem(voice.cache_dir)
    if cache:
        return fail(
            NAME,
            cache,
            f"build it: `python -m kiosk voice build --config {ctx.config_path}`",
            cache_dir=str(voice.cache_dir),
        )
    if voice.output == "sim":
        return warn(NAME, "cache complete; output is simulated (nothing is heard)",
                    'set [voice] output = "alsa" on a kiosk')  # fmt: skip
    device = device_problem(voice.device)
    if device:
        return fail(
            NAME,
            f"sound device {voice.device!r} cannot be opened: {device}",
            "connect the speaker or headset, check `aplay -L`, or correct [voice] device",
        )
    return ok(NAME, f"synthesisers present, cache complete, device {voice.device!r} opens")


def packaged_voice() -> Path | None:
    spec = importlib.util.find_spec("pyopenjtalk")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / PACKAGED_VOICE).is_file():
            return Path(folder) / PACKAGED_VOICE
    return None


def synthesiser_problems(voice: VoiceSection) -> list[str]:
    problems = []
    if shutil.which(voice.espeak_binary) is None:
        problems.append(f"{voice.espeak_binary} not found")
    if shutil.which(voice.jtalk_binary) is None:
        problems.append(f"{voice.jtalk_binary} not found")
    if not voice.jtalk_dictionary.is_dir():
        problems.append(f"no Open JTalk dictionary at {voice.jtalk_dictionary}")
    jtalk_voice = voice.jtalk_voice or packaged_voice()
    if jtalk_voice is None or not jtalk_voice.is_file():
        problems.append(f"no Open JTalk voice ({jtalk_voice or 'pyopenjtalk-plus not installed'})")
    return problems


def cache_problem(cache_dir: Path) -> str:
    """What is wrong with the cache ("" when complete)."""
    try:
        manifest = json.loads((cache_dir / "manifest.json").read_text(encoding="utf-8"))
        files = [str(name) for name in manifest["files"]]
    except FileNotFoundError:
        return f"no audio cache at {cache_dir} (never built)"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"the audio cache's manifest is unreadable: {exc}"
    absent = [name for name in files if not (cache_dir / name).is_file()]
    if absent:
        return f"audio cache incomplete: {len(absent)} of {len(files)} prompts missing"
    return ""


def device_problem(device: str) -> str:
    """Why the ALSA device cannot be opened for playback ("" when it can)."""
    try:
        import alsaaudio  # only where the check runs on a device
    except ImportError as exc:
        return f"pyalsaaudio is not installed ({exc})"
    try:
        pcm = alsaaudio.PCM(
            type=alsaaudio.PCM_PLAYBACK,
            device=device,
            channels=1,
            rate=PROBE_RATE,
            format=alsaaudio.PCM_FORMAT_S16_LE,
        )
    except alsaaudio.ALSAAudioError as exc:
        return str(exc)
    pcm.close()
    return ""
