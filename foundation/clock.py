"""Is the system clock synchronised? (the ``clock_trusted`` of every event)

Asks the kernel with ``adjtimex(2)``, as ``timedatectl`` does: the clock is
trusted when NTP (chrony, systemd-timesyncd) has cleared ``STA_UNSYNC`` and
the kernel reports no clock error state. No network, no subprocess; the
answer is kept for a second (:data:`MAX_AGE`), so asking for every event
costs a clock read.

There is no override: code that needs another answer (tests) is given a
clock-trust function instead (``Outbox(clock_trusted=...)``,
``build_checkin_service(..., clock_trusted=...)``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from time import monotonic

STA_UNSYNC = 0x0040
TIME_ERROR = 5
# How long an answer is reused. The kernel's flag moves on NTP's time scale
# (the daemon sets or clears it after its polls; the kernel raises it itself
# only once its error estimate passes 16 s), so a second changes nothing for
# an event's flag or an access decision, and saves a ctypes call per event.
MAX_AGE = 1.0


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h> (glibc, 64-bit and 32-bit longs alike):
    # modes is an int, then longs; the tail is padding we never read.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_padding", ctypes.c_int * 11),
    ]


@functools.cache
def _libc() -> ctypes.CDLL | None:
    # find_library runs ldconfig: once per process, not per event.
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name, use_errno=True) if name else None


def _adjtimex() -> tuple[int, int] | None:
    libc = _libc()
    if libc is None:
        return None
    timex = _Timex()
    state = libc.adjtimex(ctypes.byref(timex))
    if state < 0:
        return None
    return int(state), int(timex.status)


# The last answer as (when it expires, the answer): one tuple, replaced
# whole, so threads asking at once each see a consistent pair.
_last: list[tuple[float, bool]] = [(float("-inf"), False)]


def clock_is_synchronised() -> bool:
    """True when the kernel says the clock is NTP-synchronised (an answer at
    most :data:`MAX_AGE` seconds old)."""
    now = monotonic()
    expires, answer = _last[0]
    if now < expires:
        return answer
    answer = _ask_kernel()
    _last[0] = (now + MAX_AGE, answer)
    return answer


def _ask_kernel() -> bool:
    result = _adjtimex()
    if result is None:
        return False
    state, status = result
    return state != TIME_ERROR and not status & STA_UNSYNC
