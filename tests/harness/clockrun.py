"""Run one of our command lines with a fixed clock-trust answer, for tests
whose subject is a separate process (the sync agent, the doctor):

    python -m tests.harness.clockrun trusted|untrusted MODULE [ARGS...]

It replaces :func:`foundation.clock.clock_is_synchronised` before the module
and everything it imports are loaded, so every default clock-trust function of
that process (outbox, health, check-in) is the injected one. Product code has
no such switch; in-process tests pass ``clock_trusted=`` directly.
"""

from __future__ import annotations

import runpy
import sys

import foundation.clock

ANSWERS = {"trusted": True, "untrusted": False}


def argv(answer: bool, module: str, *args: str) -> list[str]:
    """The command line running ``python -m module args`` with that answer."""
    return [sys.executable, "-m", "tests.harness.clockrun",
            "trusted" if answer else "untrusted", module, *args]  # fmt: skip


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[1] not in ANSWERS:
        raise SystemExit("usage: python -m tests.harness.clockrun trusted|untrusted MODULE ...")
    answer = ANSWERS[sys.argv[1]]
    foundation.clock.clock_is_synchronised = lambda: answer
    module = sys.argv[2]
    sys.argv = [module, *sys.argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
