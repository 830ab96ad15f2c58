"""UI start with every catalogue and the voice guidance's audio cache loaded,
against a bare Kivy app with one label, in the same run.

    python bench/ui_start.py [--runs 5] [--cache DIR] [--json]

Both are spawned as new processes on a private Xvfb and timed from the spawn
to their first drawn frame (the check-in app: the attract screen), as
``bench/checkin.py`` times the UI start. Ours builds the voice guide as
``python -m kiosk`` does (``kiosk.voice.wiring.voice_for``: the cache index,
the synthesisers, the ALSA player on the ``null`` device, the background
fill started), compiles every language's catalogue, then runs the app.
The cache is built first (``python -m kiosk voice build``, real voices),
outside the timing; ``--cache`` reuses one. Target: 1.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("KIVY_NO_ARGS", "1")


def child(config_path: str, voice_on: bool = True) -> int:
    """The measured app: prints READY at its first frame. Without
    ``voice_on``: the same app with neither the voice nor the catalogues
    loaded ahead (what the voice adds)."""
    from bench.ui_startup import run_to_first_frame
    from kiosk.i18n import available_languages, translations
    from kiosk.voice.wiring import voice_for
    from sync.config import load_config

    config = load_config(config_path)
    loaded = time.perf_counter()
    for language in available_languages() if voice_on else []:
        translations(language)
    voice = voice_for(config) if voice_on else None
    print(f"VOICE_AND_CATALOGUES_MS {(time.perf_counter() - loaded) * 1000:.1f}", flush=True)
    return run_to_first_frame(config, "bench", voice)


def time_to_ready(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Seconds from spawn to READY, and the child's own voice+catalogue ms."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    inner = 0.0
    for line in proc.stdout:
        if line.startswith("VOICE_AND_CATALOGUES_MS"):
            inner = float(line.split()[1])
        if line.strip() == "READY":
            elapsed = time.perf_counter() - start
            proc.wait(60)
            return elapsed, inner
    raise RuntimeError(f"{argv} exited without READY (code {proc.wait()})")


def run(runs: int, workdir: Path, cache: Path | None) -> dict[str, Any]:
    from bench.checkin import RAW_KIVY
    from demo.config import demo_config_text, write_demo_config
    from tests.harness.xvfb import Xvfb

    cache_dir = cache or workdir / "voice-cache"
    text = demo_config_text().replace('device = "default"', 'device = "null"')
    text = text.replace('cache_dir = "voice-cache"', f'cache_dir = "{cache_dir}"')
    config = write_demo_config(workdir / "state", text)
    built = subprocess.run(
        [sys.executable, "-m", "kiosk", "voice", "build", "--config", str(config)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    files = len(list(cache_dir.glob("*.wav")))
    xvfb = Xvfb(workdir / "xvfb").start()
    try:
        raw_script = workdir / "raw_kivy.py"
        raw_script.write_text(RAW_KIVY)
        env = {
            **os.environ, **xvfb.env, "KIVY_NO_ARGS": "1", "KIVY_NO_FILELOG": "1",
            "KIVY_NO_CONSOLELOG": "1", "KIVY_HOME": str(workdir / "kivy"),
            "PYTHONPATH": str(ROOT),
        }  # fmt: skip
        ours, raw, inner, silent = [], [], [], []
        argv = [sys.executable, "-m", "bench.ui_start", "--child", str(config)]
        for _ in range(runs):
            raw.append(time_to_ready([sys.executable, str(raw_script)], env)[0])
            seconds, ms = time_to_ready(argv, env)
            ours.append(seconds)
            inner.append(ms)
            silent.append(time_to_ready([*argv, "--no-voice"], env)[0])
    finally:
        xvfb.stop()
    return {
        "ours_median_s": statistics.median(ours), "ours_max_s": max(ours),
        "raw_median_s": statistics.median(raw), "raw_max_s": max(raw),
        "no_voice_median_s": statistics.median(silent), "no_voice_max_s": max(silent),
        "voice_and_catalogues_median_ms": statistics.median(inner),
        "cached_prompts": files, "build": built.stdout.strip(),
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cache", type=Path, help="reuse this voice cache folder")
    parser.add_argument("--child", metavar="CONFIG", help=argparse.SUPPRESS)
    parser.add_argument("--no-voice", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.child:
        return child(args.child, voice_on=not args.no_voice)
    with tempfile.TemporaryDirectory() as tmp:
        results = run(args.runs, Path(tmp), args.cache)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"UI start -> first frame, {args.runs} runs each (s)   median    max")
    print(f"  ours: check-in app, all catalogues, voice cache"
          f"  {results['ours_median_s']:6.2f} {results['ours_max_s']:6.2f}")  # fmt: skip
    print(f"  the same app without voice or catalogues       "
          f"  {results['no_voice_median_s']:6.2f} {results['no_voice_max_s']:6.2f}")  # fmt: skip
    print(f"  raw: Kivy app with one label                  "
          f"  {results['raw_median_s']:6.2f} {results['raw_max_s']:6.2f}")  # fmt: skip
    print(f"  of ours: catalogues + voice guide built, median"
          f" {results['voice_and_catalogues_median_ms']:.1f} ms;"
          f" {results['cached_prompts']} prompts cached")  # fmt: skip
    print("  target: 1.5 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
