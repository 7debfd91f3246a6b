"""Pacing: the rate limiter and the event-time clock, on a fake clock and (loosely) on the real one."""

from __future__ import annotations

import time

import pytest

from clickstream.simulate.rate import EventClock, RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_rate_limiter_paces_to_the_rate():
    clock = FakeClock()
    limiter = RateLimiter(100.0, clock=clock, sleep=clock.sleep)
    for _ in range(501):
        limiter.acquire()
    assert clock.now - 100.0 == pytest.approx(5.0)


def test_rate_limiter_does_not_burst_after_falling_behind():
    clock = FakeClock()
    limiter = RateLimiter(10.0, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    clock.now += 30.0  # a stalled sink
    for _ in range(11):
        limiter.acquire()
    assert clock.now - 130.0 == pytest.approx(1.0)  # 10/s again from the stall on, no catching up


def test_no_rate_means_no_waiting():
    clock = FakeClock()
    limiter = RateLimiter(None, clock=clock, sleep=clock.sleep)
    for _ in range(1_000):
        limiter.acquire()
    assert clock.slept == []


def test_rate_limiter_holds_the_rate_in_real_time():
    limiter = RateLimiter(2_000.0)
    started = time.monotonic()
    for _ in range(1_001):
        limiter.acquire()
    assert 0.4 < time.monotonic() - started < 1.0


def test_event_clock_plays_event_time_faster():
    clock = FakeClock()
    events = EventClock(3_600.0, clock=clock, sleep=clock.sleep)
    events.wait_until(1_000_000)
    events.wait_until(1_000_000 + 3_600_000)  # an hour later: a second later
    assert clock.now - 100.0 == pytest.approx(1.0)
    assert events.event_time_ms() == 1_000_000 + 3_600_000
    events.wait_until(1_000_000)  # already due: no wait
    assert clock.now - 100.0 == pytest.approx(1.0)


def test_event_clock_cuts_idle_stretches():
    clock = FakeClock()
    events = EventClock(60.0, max_idle_s=2.0, clock=clock, sleep=clock.sleep)
    events.wait_until(0)
    events.wait_until(86_400_000)  # a day at 60x would be 24 minutes
    assert clock.now - 100.0 == pytest.approx(2.0)
    events.wait_until(86_400_000 + 60_000)  # and the clock goes on from there
    assert clock.now - 100.0 == pytest.approx(3.0)


def test_event_clock_without_speedup_never_waits():
    clock = FakeClock()
    events = EventClock(None, clock=clock, sleep=clock.sleep)
    events.wait_until(0)
    events.wait_until(10**12)
    assert clock.slept == []
