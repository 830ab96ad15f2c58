"""How hard the agent pushes events at central: the ack timeout and the window.

A fixed ack timeout turns a slow central into a resend storm: when acks take
longer than the timeout, every agent resends its whole window, central spends
its time recognising duplicates, acks take longer still, and the storm feeds
itself (seen in the 1,000-device soak: 37,000 duplicates in eight minutes).
:class:`AckPacer` applies what TCP learned for the same problem:

- the timeout follows the measured ack round trip (RFC 6298: smoothed round
  trip plus four deviations), never below ``sync.ack_timeout_seconds``;
- round trips are measured only on batches sent once (Karn's rule: an ack
  after a resend cannot say which send it answers);
- each timeout doubles the timeout (up to ``cap_factor`` times the floor)
  until a batch sent once is acknowledged;
- each timeout also shrinks the window to one batch; every batch acked
  widens it by one again, back to ``sync.max_inflight_batches``.

Pure logic: the agent passes monotonic times in.
"""

from __future__ import annotations

import random

CAP_FACTOR = 8.0
# RFC 6298's gains: new samples count for 1/8 of the average, 1/4 of the deviation.
_ALPHA = 0.125
_BETA = 0.25


class AckPacer:
    def __init__(self, floor: float, max_window: int, cap_factor: float = CAP_FACTOR) -> None:
        self.floor = floor
        self.cap = floor * cap_factor
        self.max_window = max_window
        self.window = max_window
        self.timeouts = 0
        self._srtt: float | None = None
        self._rttvar = 0.0
        self._backoff = 1.0

    @property
    def smoothed_rtt(self) -> float | None:
        return self._srtt

    @property
    def timeout(self) -> float:
        estimate = self.floor if self._srtt is None else self._srtt + 4 * self._rttvar
        return min(self.cap, max(self.floor, estimate) * self._backoff)

    def acked(self, round_trip: float | None) -> None:
        """A batch was fully acknowledged; ``round_trip`` is None if it had
        been sent before (its round trip means nothing, and the backoff stays)."""
        self.window = min(self.max_window, self.window + 1)
        if round_trip is None:
            return
        if self._srtt is None:
            self._srtt, self._rttvar = round_trip, round_trip / 2
        else:
            self._rttvar = (1 - _BETA) * self._rttvar + _BETA * abs(self._srtt - round_trip)
            self._srtt = (1 - _ALPHA) * self._srtt + _ALPHA * round_trip
        self._backoff = 1.0

    def expired(self) -> None:
        """No ack in time: wait longer next time and resend one batch at a time."""
        self.timeouts += 1
        self._backoff = min(self._backoff * 2, self.cap / self.floor)
        self.window = 1


def jittered(seconds: float, rng: random.Random, spread: float = 0.2) -> float:
    """``seconds`` give or take ``spread`` of it, so that a fleet that timed out
    together does not retry together."""
    return seconds * rng.uniform(1 - spread, 1 + spread)
