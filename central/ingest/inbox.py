"""The ingest worker's inbox: a FIFO bounded in messages AND in payload bytes.

The bytes of a message stay charged from :meth:`ByteBoundedQueue.put` until
the worker calls :meth:`ByteBoundedQueue.release` after handling it, so the
bound covers everything the worker holds: waiting and being committed.

A message bigger than the whole budget is admitted only when nothing else is
held, so a limit below one packet slows the worker but never stalls it.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class ByteBoundedQueue(Generic[T]):
    def __init__(self, max_items: int, max_bytes: int) -> None:
        if max_items < 1 or max_bytes < 1:
            raise ValueError("max_items and max_bytes must be positive")
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: deque[tuple[T, int]] = deque()
        self._held_bytes = 0
        self._held_items = 0
        self.peak_bytes = 0
        self._cond = threading.Condition()

    @property
    def held_bytes(self) -> int:
        with self._cond:
            return self._held_bytes

    def _fits(self, size: int) -> bool:
        if self._held_items == 0:
            return True
        return self._held_items < self.max_items and self._held_bytes + size <= self.max_bytes

    def put(self, item: T, size: int, timeout: float | None = None) -> bool:
        """Add ``item`` charged ``size`` bytes; wait up to ``timeout`` seconds
        (None: no wait, 0 included) for room. False when there was none."""
        with self._cond:
            if not self._fits(size) and (
                not timeout or not self._cond.wait_for(lambda: self._fits(size), timeout)
            ):
                return False
            self._items.append((item, size))
            self._held_bytes += size
            self._held_items += 1
            self.peak_bytes = max(self.peak_bytes, self._held_bytes)
            self._cond.notify_all()
            return True

    def get(self, timeout: float = 0.0) -> tuple[T, int] | None:
        """The oldest item and its size (still charged), or None after ``timeout``."""
        with self._cond:
            if not self._items and (
                timeout <= 0 or not self._cond.wait_for(lambda: bool(self._items), timeout)
            ):
                return None
            return self._items.popleft()

    def release(self, size: int) -> None:
        """Uncharge one handled item of ``size`` bytes (wakes waiting producers)."""
        with self._cond:
            self._held_bytes -= size
            self._held_items -= 1
            self._cond.notify_all()
