"""A stand-in for the `time` module of code that measures how long something was quiet: its
monotonic time moves only when a test moves it, so a busy machine's pause between two lines of
a test cannot make a timeout pass early, and a test need not sleep for one to pass."""

from __future__ import annotations


class ManualTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
