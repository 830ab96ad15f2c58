"""``python -m kiosk voice build --config device.toml``: synthesise every
prompt of every screen in every language with a catalogue into
``[voice] cache_dir`` (idempotent: what exists is kept), and write the
manifest that ``python -m deploy doctor`` checks."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence

from foundation.cli import add_config_argument, run_cli
from foundation.logs import configure_logging
from kiosk.i18n import available_languages
from kiosk.voice.cache import AudioCache
from kiosk.voice.voices import voices_for
from kiosk.voice.wiring import language_jobs, synth_jobs
from sync.config import load_config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kiosk voice", description="Prepare the voice guidance's audio cache."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="synthesise every missing prompt")
    add_config_argument(build)
    build.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="synthesisers run at once"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging("INFO")

    def body() -> int:
        config = load_config(args.config)
        languages = available_languages()
        voices = voices_for(config.voice, languages)
        cache = AudioCache(config.voice.cache_dir)
        cache.load_index()
        jobs = synth_jobs(voices, language_jobs(config, languages))
        started = time.monotonic()
        report = cache.build(jobs, workers=args.workers)
        manifest = cache.write_manifest(jobs)
        print(
            f"voice cache {cache.root}: {report.made} made, {report.present} already there,"
            f" {len(report.failed)} failed, {len(languages)} languages,"
            f" {time.monotonic() - started:.1f} s; manifest {manifest.name}"
        )
        for failure in report.failed[:20]:
            print(f"  failed: {failure}")
        for problem in voices.problems:
            print(f"  problem: {problem}")
        return 1 if report.failed else 0

    return run_cli(body)
