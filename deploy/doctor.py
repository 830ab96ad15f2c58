"""``python -m deploy doctor``: the device self-test (docs/doctor.md).

Runs every check of :mod:`deploy.checks` against the installed device and
prints a table for people (or ``--json`` for machines). Exit code 0 when no
check failed (warnings allowed), 1 when any failed, 2 for a usage error.

The checks only read, except two on purpose: the store check writes a row
and rolls it back, and ``--relay-click DOOR`` unlocks a door for one second
after the technician confirms (or ``--yes``). The card test reads the kind
of a presented card, never its number and never a PIN.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from deploy.checks import CheckResult, DoctorContext, Status
from deploy.checks.hardware import check_keypad, check_lock, check_reader
from deploy.checks.languages import check_translations
from deploy.checks.local import check_clock, check_config, check_disk, check_gpio_pins, check_store
from deploy.checks.network import check_broker, check_central
from deploy.checks.systemd import check_services, check_watchdog
from deploy.checks.voice import check_voice
from foundation.logs import configure_logging, redact_text
from sync.config import load_config
from sync.errors import ConfigError

log = logging.getLogger("deploy.doctor")


EXIT_OK, EXIT_FAILED = 0, 1
Check = Callable[[DoctorContext], CheckResult]
CHECKS: tuple[Check, ...] = (
    check_config,
    check_gpio_pins,
    check_reader,
    check_lock,
    check_keypad,
    check_broker,
    check_central,
    check_clock,
    check_disk,
    check_store,
    check_services,
    check_watchdog,
    check_voice,
    check_translations,
)


def load_context(path: Path, **options: Any) -> DoctorContext:
    """The context for the checks: the config (or why it did not load) and its raw TOML."""
    ctx = DoctorContext(config_path=path, config=None, **options)
    try:
        ctx.raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        ctx.raw = None  # load_config below says what is wrong
    try:
        ctx.config = load_config(path)
    except ConfigError as exc:
        ctx.config_error = exc
    return ctx


def run_checks(ctx: DoctorContext, checks: Sequence[Check] = CHECKS) -> list[CheckResult]:
    results = []
    for check in checks:
        try:
            results.append(check(ctx))
        except Exception as exc:  # a bug in one check must not hide the others
            name = check.__name__.removeprefix("check_")
            log.exception("doctor check crashed", extra={"check": name})
            results.append(
                CheckResult(
                    name,
                    Status.FAIL,
                    f"the check itself failed: {exc!r}",
                    "report this to the developers with the output above",
                )
            )
    return results


def render_table(results: Sequence[CheckResult]) -> str:
    """Aligned columns: check, status, finding; the action on the next line."""
    name_width = max(len("CHECK"), *(len(r.name) for r in results))
    status_width = len("STATUS")
    lines = [f"{'CHECK':<{name_width}}  {'STATUS':<{status_width}}  FINDING"]
    indent = " " * (name_width + status_width + 4)
    for r in results:
        shown = r.status.value if r.status is Status.OK else r.status.value.upper()
        lines.append(f"{r.name:<{name_width}}  {shown:<{status_width}}  {r.finding}")
        if r.action:
            lines.append(f"{indent}-> {r.action}")
    failed = [r.name for r in results if r.status is Status.FAIL]
    warned = [r.name for r in results if r.status is Status.WARN]
    if failed:
        lines.append(
            f"\nNOT READY: {len(failed)} failed ({', '.join(failed)}), {len(warned)} warning(s)"
        )
    else:
        lines.append(f"\nREADY: no check failed, {len(warned)} warning(s)")
    return "\n".join(lines)


def report_json(ctx: DoctorContext, results: Sequence[CheckResult]) -> dict[str, Any]:
    return {
        "ok": not any(r.status is Status.FAIL for r in results),
        "config": str(ctx.config_path),
        "device": ctx.config.device.id if ctx.config else None,
        "checks": [r.to_json() for r in results],
    }


def _confirmer(assume_yes: bool, stdin: IO[str], stderr: IO[str]) -> Callable[[str], bool]:
    def confirm(question: str) -> bool:
        if assume_yes:
            return True
        if not stdin.isatty():
            print(f"{question} -- not asked: no terminal (pass --yes)", file=stderr)
            return False
        print(f"{question} [y/N] ", end="", file=stderr, flush=True)
        return stdin.readline().strip().lower() in {"y", "yes"}

    return confirm


def run_doctor(args: argparse.Namespace) -> int:
    configure_logging("WARNING")
    ctx = load_context(
        args.config,
        timeout=args.timeout,
        card_test=args.card_test,
        card_wait_seconds=args.card_wait,
        relay_click=args.relay_click,
        confirm=_confirmer(args.yes, sys.stdin, sys.stderr),
        say=lambda line: print(line, file=sys.stderr, flush=True),
    )
    results = run_checks(ctx)
    if args.json:
        print(json.dumps(report_json(ctx, results), ensure_ascii=False, indent=2))
    else:
        print(redact_text(render_table(results)))
    failed = [r.name for r in results if r.status is Status.FAIL]
    if failed:
        log.warning("doctor found failures", extra={"failed": failed, "config": str(args.config)})
        return EXIT_FAILED
    return EXIT_OK
