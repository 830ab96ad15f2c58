"""The ingest worker's inbox: bounded in messages and in bytes, the bytes
charged until the worker releases them, one message always let in."""

from __future__ import annotations

import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from central.ingest.inbox import ByteBoundedQueue


def test_ingest_inbox_waits_for_bytes_to_be_released() -> None:
    q: ByteBoundedQueue[str] = ByteBoundedQueue(max_items=10, max_bytes=100)
    assert q.put("a", 60)
    assert not q.put("b", 50)  # 110 > 100: no room, no wait
    got = q.get()
    assert got == ("a", 60)
    assert not q.put("b", 50)  # taken but not released: still charged
    done = threading.Event()

    def producer() -> None:
        assert q.put("b", 50, timeout=10)
        done.set()

    thread = threading.Thread(target=producer)
    thread.start()
    q.release(60)
    thread.join(10)
    assert done.is_set()
    assert q.get() == ("b", 50)
    assert q.peak_bytes == 60


def test_ingest_inbox_admits_one_oversized_message_when_empty() -> None:
    q: ByteBoundedQueue[str] = ByteBoundedQueue(max_items=10, max_bytes=100)
    assert q.put("big", 500)
    assert not q.put("small", 1)
    q.release(q.get()[1])  # type: ignore[index]
    assert q.put("small", 1)


def test_ingest_inbox_counts_items_too() -> None:
    q: ByteBoundedQueue[int] = ByteBoundedQueue(max_items=2, max_bytes=1000)
    assert q.put(1, 1) and q.put(2, 1)
    assert not q.put(3, 1, timeout=0.01)
    assert q.get(timeout=0.01) == (1, 1)
    assert q.get(timeout=0.01) == (2, 1)
    assert q.get(timeout=0.01) is None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(min_value=0, max_value=300)), max_size=60))
def test_ingest_inbox_never_holds_more_than_its_bound(steps: list[tuple[bool, int]]) -> None:
    q: ByteBoundedQueue[int] = ByteBoundedQueue(max_items=1000, max_bytes=256)
    taken: list[int] = []
    for put, size in steps:
        if put:
            q.put(size, size)
        elif (got := q.get()) is not None:
            taken.append(got[1])
        elif taken:
            q.release(taken.pop(0))
        # Over the bound only by one message let in alone.
        assert q.held_bytes <= 256 or len(taken) + len(q._items) == 1
