"""Riding out a database outage: the retry policy of jdbc lookups and sinks.

A statement failing for a transient reason (the dialect's `is_transient`: lost connection,
server restarting) is retried on a new connection after an exponential backoff (100 ms,
doubling, at most 2 s). `sink.max-retries` / `lookup.max-retries` bound how many times a
statement may fail on an open connection; while the database refuses connections the
connector keeps trying until `connection.max-retry-timeout` has passed since the first failure.
Past either bound the job fails with one message naming the table, the database and the last error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from clickstream.config import parse_duration_ms
from clickstream.errors import ClickstreamError, ConnectorError
from clickstream.schema import TableDef

__all__ = ["WAITING", "RetryPolicy", "Outage"]

# The connector's status while it waits for its database to come back.
WAITING = "waiting for database"

_FIRST_DELAY_S = 0.1
_MAX_DELAY_S = 2.0


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often one jdbc table retries a statement."""

    retries_key: str
    max_retries: int
    timeout_s: float

    @classmethod
    def of(cls, table: TableDef, retries_key: str, max_retries: int) -> RetryPolicy:
        """The policy of `table` given its (already validated) `retries_key` option."""
        text = table.options.get("connection.max-retry-timeout", "60 s")
        try:
            timeout_ms = parse_duration_ms(text)
        except ClickstreamError as e:
            raise ConnectorError(
                f"jdbc table '{table.name}': option 'connection.max-retry-timeout': {e}"
            ) from None
        return cls(retries_key, max_retries, timeout_ms / 1000)

    def describe(self) -> str:
        return f"{self.retries_key} = {self.max_retries}, connection.max-retry-timeout = {self.timeout_s:g} s"


@dataclass
class Outage:
    """The retry state of one statement: failures so far, the deadline and the next backoff."""

    policy: RetryPolicy
    sleep: Callable[[float], None] = time.sleep
    started: float = field(default_factory=time.monotonic)
    failures: int = 0  # failures of the statement on an open connection
    attempts: int = 0  # every retry, reconnecting included
    _delay: float = _FIRST_DELAY_S

    def give_up(self, statement_failed: bool) -> bool:
        """Whether to stop retrying after a failure (of the statement, else of connecting)."""
        if statement_failed:
            self.failures += 1
            if self.failures > self.policy.max_retries:
                return True
        return self.elapsed() + self._delay > self.policy.timeout_s

    def wait(self) -> None:
        self.sleep(self._delay)
        self._delay = min(self._delay * 2, _MAX_DELAY_S)
        self.attempts += 1

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def summary(self) -> str:
        return f"gave up after {self.attempts} retries in {self.elapsed():.1f} s ({self.policy.describe()})"
