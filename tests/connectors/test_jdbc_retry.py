"""The retry policy of jdbc lookups and sinks, without a database: bounds and backoff."""

from __future__ import annotations

import pytest

from clickstream.connectors.jdbc_retry import Outage, RetryPolicy
from clickstream.errors import ConnectorError
from clickstream.schema import TableDef
from tests.connectors.test_jdbc import jdbc_table


def _table(**options: str) -> TableDef:
    return jdbc_table("jdbc:postgresql://127.0.0.1:5432/test", "t", options=options)


def test_policy_reads_flink_options_and_defaults() -> None:
    assert RetryPolicy.of(_table(), "sink.max-retries", 3) == RetryPolicy("sink.max-retries", 3, 60.0)
    policy = RetryPolicy.of(_table(**{"connection.max-retry-timeout": "5 s"}), "lookup.max-retries", 7)
    assert policy.timeout_s == 5.0
    assert policy.describe() == "lookup.max-retries = 7, connection.max-retry-timeout = 5 s"


def test_bad_timeout_is_reported_by_name() -> None:
    with pytest.raises(ConnectorError, match="connection.max-retry-timeout"):
        RetryPolicy.of(_table(**{"connection.max-retry-timeout": "soon"}), "sink.max-retries", 3)


def test_backoff_doubles_up_to_its_cap() -> None:
    slept: list[float] = []
    outage = Outage(RetryPolicy("sink.max-retries", 100, 1000.0), sleep=slept.append)
    for _ in range(8):
        assert not outage.give_up(statement_failed=False)
        outage.wait()
    assert slept == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]
    assert outage.attempts == 8


def test_statement_failures_are_bounded_by_max_retries_reconnects_only_by_time() -> None:
    outage = Outage(RetryPolicy("sink.max-retries", 2, 1000.0), sleep=lambda _: None)
    assert not outage.give_up(statement_failed=True)
    assert not outage.give_up(statement_failed=True)
    for _ in range(20):  # the database refusing connections: waited for until the timeout
        assert not outage.give_up(statement_failed=False)
    assert outage.give_up(statement_failed=True)


def test_the_timeout_ends_the_wait() -> None:
    outage = Outage(RetryPolicy("sink.max-retries", 100, 0.0), sleep=lambda _: None)
    assert outage.give_up(statement_failed=False)
