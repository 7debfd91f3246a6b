"""Pacing in wall-clock time: a rate limiter (events per second) and an event-time clock that
plays event time back `speedup` times faster than it happened.

Both take `clock` and `sleep` functions so tests can run them on a fake clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]
Sleep = Callable[[float], None]

MIN_SLEEP_S = 0.001  # below this, sleeping costs more than it paces: let events through in a burst
MAX_LAG_S = 1.0  # further behind than this (a slow sink): stop catching up, pace from now on


class RateLimiter:
    """Let `rate` events per second through, on average; `rate=None` or 0: as fast as possible."""

    def __init__(self, rate: float | None, clock: Clock = time.monotonic, sleep: Sleep = time.sleep) -> None:
        if rate is not None and rate < 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate or None
        self.clock, self.sleep = clock, sleep
        self.start: float | None = None
        self.count = 0

    def acquire(self, n: int = 1) -> None:
        """Wait until `n` more events may go."""
        if self.rate is None:
            return
        now = self.clock()
        if self.start is None:
            self.start = now
        due = self.start + self.count / self.rate
        self.count += n
        delay = due - now
        if delay >= MIN_SLEEP_S:
            self.sleep(delay)
        elif delay < -MAX_LAG_S:
            self.start, self.count = now, n


class EventClock:
    """Wall time follows event time at `speedup` x: `speedup=3600` plays an hour per second.

    The first event seen sets the origin. A gap that would take more than `max_idle_s` of wall
    time (a night with no data, an outlier timestamp) is cut to `max_idle_s`, the clock moving on
    from there. `speedup=None` or 0: never wait.
    """

    def __init__(
        self,
        speedup: float | None,
        max_idle_s: float | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if speedup is not None and speedup < 0:
            raise ValueError(f"speedup must be positive, got {speedup}")
        self.speedup = speedup or None
        self.max_idle_s = max_idle_s
        self.clock, self.sleep = clock, sleep
        self.origin: tuple[float, int] | None = None  # (wall s, event ms) at the same instant

    def due(self, event_ms: int) -> float:
        """The wall time (in `clock` seconds) at which `event_ms` should be played."""
        if self.origin is None:
            self.origin = (self.clock(), event_ms)
        wall, event = self.origin
        return wall + (event_ms - event) / 1000.0 / (self.speedup or float("inf"))

    def wait_until(self, event_ms: int) -> None:
        """Sleep until `event_ms` is due; at once if it is due already (or there is no speed-up)."""
        if self.speedup is None:
            return
        now = self.clock()
        delay = self.due(event_ms) - now
        if self.max_idle_s is not None and delay > self.max_idle_s:
            self.origin = (now + self.max_idle_s, event_ms)  # skip the idle stretch
            delay = self.max_idle_s
        if delay >= MIN_SLEEP_S:
            self.sleep(delay)

    def event_time_ms(self) -> int | None:
        """The event time being played now; None before the first event."""
        if self.origin is None:
            return None
        wall, event = self.origin
        if self.speedup is None:
            return event
        return event + int((self.clock() - wall) * 1000.0 * self.speedup)
