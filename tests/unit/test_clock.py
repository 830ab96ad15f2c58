"""Clock trust against the real kernel: ``clock_is_synchronised`` asks
``adjtimex`` through glibc; these tests ask the kernel again through the raw
system call, with a buffer of our own, and compare."""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import time

import pytest

from foundation import clock

# The adjtimex system call numbers (asm/unistd.h) of the machines we run on.
SYS_ADJTIMEX = {"x86_64": 159, "aarch64": 171}
FILL = 0xA5
BUFFER = 1024


def raw_adjtimex() -> tuple[int, bytes]:
    """The kernel's answer and its struct, written into an oversized buffer
    pre-filled with a pattern (modes = 0: read only)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    buf = (ctypes.c_ubyte * BUFFER)(*([0] * 4 + [FILL] * (BUFFER - 4)))
    state = libc.syscall(ctypes.c_long(SYS_ADJTIMEX[platform.machine()]), ctypes.byref(buf))
    assert state >= 0, f"adjtimex failed: errno {ctypes.get_errno()}"
    return int(state), bytes(buf)


def test_clock_struct_is_the_size_the_kernel_writes() -> None:
    _, raw = raw_adjtimex()
    written = max(i for i, b in enumerate(raw) if b != FILL) + 1
    # The kernel fills every field up to ``tai`` and hands the trailing
    # padding back as it came in (our pattern): the last field it writes
    # must be our last field, and our struct must cover glibc's padding too.
    assert written == clock._Timex.tai.offset + ctypes.sizeof(ctypes.c_int)
    assert ctypes.sizeof(clock._Timex) == written + 11 * ctypes.sizeof(ctypes.c_int)


def test_clock_struct_fields_sit_where_the_kernel_puts_them() -> None:
    now = int(time.time())
    _, raw = raw_adjtimex()
    size = ctypes.sizeof(ctypes.c_long)
    # Find the kernel's current time (tv_sec) in the raw struct by value.
    found = [
        off for off in range(0, 208, size)
        if abs(int.from_bytes(raw[off : off + size], "little", signed=True) - now) <= 2
    ]  # fmt: skip
    assert found == [clock._Timex.time_sec.offset]
    status = int.from_bytes(
        raw[clock._Timex.status.offset : clock._Timex.status.offset + 4], "little"
    )
    parsed = clock._adjtimex()
    assert parsed is not None
    assert parsed[1] == status


def test_clock_is_synchronised_agrees_with_the_kernel() -> None:
    state, raw = raw_adjtimex()
    offset = clock._Timex.status.offset
    status = int.from_bytes(raw[offset : offset + 4], "little")
    expected = state != clock.TIME_ERROR and not status & clock.STA_UNSYNC
    answer = clock.clock_is_synchronised()
    assert isinstance(answer, bool)
    assert answer is expected


def test_clock_has_no_environment_override(monkeypatch: pytest.MonkeyPatch) -> None:
    before = clock.clock_is_synchronised()
    monkeypatch.setenv("KIOSK_CLOCK_TRUSTED", "0" if before else "1")
    assert clock.clock_is_synchronised() is before


def test_clock_answer_is_reused_for_max_age_then_asked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    answers = iter([True, False])
    asked: list[float] = []

    def ask_kernel() -> bool:
        asked.append(now[0])
        return next(answers)

    monkeypatch.setattr(clock, "monotonic", lambda: now[0])
    monkeypatch.setattr(clock, "_ask_kernel", ask_kernel)
    monkeypatch.setattr(clock, "_last", [(float("-inf"), False)])
    assert clock.clock_is_synchronised() is True
    now[0] += clock.MAX_AGE / 2
    assert clock.clock_is_synchronised() is True  # the kept answer
    assert asked == [1000.0]
    now[0] += clock.MAX_AGE / 2
    assert clock.clock_is_synchronised() is False  # expired: the kernel again
    assert asked == [1000.0, 1000.0 + clock.MAX_AGE]
