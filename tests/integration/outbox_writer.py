"""A separate writer process for the outbox tests:
``python -m tests.integration.outbox_writer DB COUNT TAG``.

Appends COUNT events tagged TAG and prints each returned seq (flushed), so
the parent knows exactly which appends had returned when it kills us.
"""

from __future__ import annotations

import sys

from sync.outbox import Outbox
from sync.store import open_store


def main() -> int:
    path, count, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with open_store(path, busy_timeout=60) as store:
        outbox = Outbox(store, clock_trusted=lambda: True)
        print("ready", flush=True)
        for index in range(count):
            event = outbox.append("test.append", {"writer": tag, "index": index})
            sys.stdout.write(f"{event.seq}\n")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
