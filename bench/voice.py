"""Voice guidance latency: a screen change to the first audio period written
to ALSA, against raw pyalsaaudio writing the same WAV, in the same run.

    python bench/voice.py [--changes 40] [--device null] [--json]

"Ours": the check-in app's own action path (``KioskApp.act`` as a ``.kv``
handler calls it: the session changes screen, the view is updated, the
voice guide picks the prompt, finds it in the cache and hands it to the
ALSA player's thread, which reads the WAV, opens or reuses the PCM, scales
the volume and writes the first period). No window is opened: drawing is
not on this path. The prompts are synthesised first (Open JTalk, the real
cache), outside the timing. "Raw": open the same ALSA device with
pyalsaaudio, read the same WAV and write its first period, nothing else.
Target: 150 ms. ALSA's ``null`` device stands in for a sound card (it takes
periods at once, so this measures our side, not a DAC's buffer).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.setdefault("KIVY_NO_ARGS", "1")

from demo.config import demo_config_text, write_demo_config  # noqa: E402
from kiosk.voice.player import PERIOD_FRAMES, AlsaPlayer, read_wav  # noqa: E402
from sync.config import load_config  # noqa: E402


def ours(workdir: Path, device: str, changes: int) -> tuple[list[float], Path]:
    from kiosk.checkin.ui.app import KioskApp
    from kiosk.checkin.wiring import build_checkin_session, lock_for
    from kiosk.voice.wiring import voice_for

    text = demo_config_text().replace('device = "default"', f'device = "{device}"')
    config = load_config(write_demo_config(workdir / "state", text))
    player = AlsaPlayer(device, config.voice.volume)
    guide = voice_for(config, player=player, prepare=False)
    assert guide is not None
    factory, close = build_checkin_session(config, lock=lock_for(config))
    app = KioskApp(factory, "bench", voice=guide)
    app._session_changed(app.session)  # what build() does: the attract prompt
    try:
        _prepare(app, guide)
        latencies = []
        for i in range(changes):
            before = player.first_write
            started = time.monotonic()
            app.act("keypad" if i % 2 == 0 else "back")
            latencies.append(_first_write_after(player, before, started) - started)
            time.sleep(0.05)
        sample = guide.cache.path(
            guide.voices.for_language("ja").voice_id,  # type: ignore[union-attr]
            app.view.t_enter_code,
        )
    finally:
        guide.close()
        close()
    return latencies, sample


def _prepare(app: Any, guide: Any) -> None:
    """Synthesise the two screens' prompts (real voices), outside the timing."""
    for action in ("keypad", "back"):
        app.act(action)
        deadline = time.monotonic() + 120
        while guide._last is None or not all(
            guide.cache.has(guide.voices.for_language("ja").voice_id, s)
            for s in guide._last.sentences
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("prompts were not synthesised")
            time.sleep(0.05)
        time.sleep(0.3)
    app.act("back")
    time.sleep(0.3)


def _first_write_after(player: AlsaPlayer, before: float | None, started: float) -> float:
    deadline = started + 5
    while time.monotonic() < deadline:
        written = player.first_write
        if written is not None and written != before and written >= started:
            return written
        time.sleep(0.0005)
    raise RuntimeError("no audio written within 5 s")


def raw(device: str, wav: Path, runs: int) -> list[float]:
    import alsaaudio

    latencies = []
    for _ in range(runs):
        started = time.monotonic()
        rate, channels, frames = read_wav(wav)
        pcm = alsaaudio.PCM(
            type=alsaaudio.PCM_PLAYBACK, device=device, channels=channels, rate=rate,
            format=alsaaudio.PCM_FORMAT_S16_LE, periodsize=PERIOD_FRAMES,
        )  # fmt: skip
        pcm.write(frames[: PERIOD_FRAMES * 2 * channels])
        latencies.append(time.monotonic() - started)
        pcm.close()
        time.sleep(0.05)
    return latencies


def summary(values: list[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values)
    return {
        "p50_ms": statistics.median(ms),
        "p95_ms": ms[max(0, round(0.95 * len(ms)) - 1)],
        "max_ms": ms[-1],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=40, help="screen changes timed")
    parser.add_argument("--device", default="null", help="ALSA playback device")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        mine, wav = ours(Path(tmp), args.device, args.changes)
        results = {"ours": summary(mine), "raw": summary(raw(args.device, wav, args.changes))}
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"screen change -> first audio period on ALSA {args.device!r}, {args.changes} changes")
    print("                                         p50 ms   p95 ms   max ms")
    for label, key in (("ours (app action -> voice -> ALSA)", "ours"),
                       ("raw pyalsaaudio (open, read, write)", "raw")):  # fmt: skip
        r = results[key]
        print(f"  {label:<38}{r['p50_ms']:8.2f} {r['p95_ms']:8.2f} {r['max_ms']:8.2f}")
    print("  target: 150 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
