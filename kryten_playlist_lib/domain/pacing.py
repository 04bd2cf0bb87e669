"""A token bucket for CyTube's add rate limit: a burst, then a steady rate (nats.md section 3).

Pure: the caller passes the clock, so it can be tested without waiting.
"""

from __future__ import annotations


class AddPacer:
    def __init__(self, burst: int, rate_per_second: float, now: float) -> None:
        self._burst = burst
        self._rate = rate_per_second
        self._tokens = float(burst)
        self._updated = now

    def wait_seconds(self, now: float) -> float:
        """How long to wait before the next add may go out (0 when it may go now)."""
        self._refill(now)
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self._rate

    def spend(self, now: float) -> None:
        """Record an add that went out at `now`."""
        self._refill(now)
        self._tokens -= 1

    def _refill(self, now: float) -> None:
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
