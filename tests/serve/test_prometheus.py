"""A real Prometheus scrapes `clickstream run --serve`: what it stores equals what the job reports.

The job (tests/serve/served_job.py) reads a two-partition log topic into SQLite; it serves with a
token, so Prometheus authenticates as the README's scrape configuration shows. Once the job has
read a batch of events its figures hold still, so the values Prometheus stored can be compared
exactly with the job's own `/api/status`: records in, the watermark, the lag of each partition.
To see a lag other than 0, the test holds the results file's write lock: the job's sink waits for
it, the job reads no further, and the events appended meanwhile stay unread.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.serve.prometheus import Prometheus, prometheus_server
from tests.serve.served_job import COPY_QUERY, ServedJob, served_job

pytestmark = pytest.mark.integration

TOKEN = "prometheus-test-token"
WAIT_S = 30.0
RECORDS_IN = f'clickstream_records_in_total{{job="clickstream",query="{COPY_QUERY}"}}'
WATERMARK = f'clickstream_watermark_seconds{{query="{COPY_QUERY}"}}'
PARTITION_LAG = 'clickstream_source_partition_lag_records{source="events"}'


def _wait_stored(prometheus: Prometheus, expr: str, expected: float) -> None:
    """Until Prometheus's latest sample of `expr` is `expected` (a scrape happens every second)."""
    deadline = time.monotonic() + WAIT_S
    while (value := prometheus.value(expr)) != expected:
        assert time.monotonic() < deadline, (
            f"{expr} = {value}, not {expected}, after {WAIT_S} s; targets: {prometheus.targets()}"
        )
        time.sleep(0.3)


def _assert_stored_equals_reported(prometheus: Prometheus, job: ServedJob, records: int) -> None:
    reported = job.wait_for_records(records)
    query = reported["queries"][COPY_QUERY]
    _wait_stored(prometheus, RECORDS_IN, records)
    _wait_stored(prometheus, WATERMARK, query["watermark"] / 1000)
    lags = {r["metric"]["partition"]: float(r["value"][1]) for r in prometheus.query(PARTITION_LAG)}
    assert lags == {p: float(n) for p, n in reported["sources"]["events"]["lag"].items()}
    assert set(lags) == {"0", "1"}
    assert prometheus.value('up{job="clickstream"}') == 1


@contextmanager
def _results_locked(job: ServedJob) -> Iterator[None]:
    """Hold the results file's write lock (well under the sink's 30 s busy timeout)."""
    lock = sqlite3.connect(job.results, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        lock.execute("ROLLBACK")
        lock.close()


def _stored_lag_equals_reported(prometheus: Prometheus, job: ServedJob) -> dict[str, int]:
    """Append events while the results file is locked until some stay unread, and return the lag
    once Prometheus stored what the job reports. The job may read a batch before its sink reaches
    the lock: then it has rows to write and stops at its next checkpoint, so more are appended."""
    deadline = time.monotonic() + WAIT_S
    while True:
        assert time.monotonic() < deadline, f"no stable lag within {WAIT_S} s; {job.status()}"
        reported = job.status()["sources"]["events"]["lag"]
        if not any(reported.values()):
            job.append(100)
            continue
        stored = {p: prometheus.value(f'{PARTITION_LAG[:-1]},partition="{p}"}}') for p in reported}
        if (
            stored == {p: float(n) for p, n in reported.items()}
            and job.status()["sources"]["events"]["lag"] == reported
        ):
            return reported
        time.sleep(0.3)


def test_prometheus_stores_what_the_job_reports(tmp_path: Path) -> None:
    with served_job(tmp_path / "job", token=TOKEN) as job:
        job.append(300)
        job.wait_for_records(300)
        with prometheus_server(tmp_path / "prometheus", job.target, token=TOKEN) as prometheus:
            started = time.time()
            _assert_stored_equals_reported(prometheus, job, 300)
            job.append(240)
            _assert_stored_equals_reported(prometheus, job, 540)
            # the history holds both plateaus, in order
            series = prometheus.query_range(RECORDS_IN, started - 5, time.time() + 1)
            values = [float(v) for _, v in series[0]["values"]]
            assert values[0] == 300 and values[-1] == 540
            assert values == sorted(values)
            with _results_locked(job):
                lags = _stored_lag_equals_reported(prometheus, job)
                assert sum(lags.values()) > 0 and set(lags) == {"0", "1"}
                # the scrape still has the job's figures; the results file is marked unreadable
                _wait_stored(prometheus, "clickstream_results_readable", 0)
                records_in = job.status()["queries"][COPY_QUERY]["records_in"]
                assert records_in == job.appended - sum(lags.values())
                _wait_stored(prometheus, RECORDS_IN, records_in)
            _assert_stored_equals_reported(prometheus, job, job.appended)  # caught up: lag 0 again
        assert job.interrupt() == 0, job.output()


def test_prometheus_without_the_token_is_refused(tmp_path: Path) -> None:
    with (
        served_job(tmp_path / "job", token=TOKEN) as job,
        prometheus_server(tmp_path / "prometheus", job.target) as prometheus,
    ):
        deadline = time.monotonic() + WAIT_S
        targets = prometheus.targets()
        while [t["health"] for t in targets] != ["down"]:
            assert time.monotonic() < deadline, targets
            time.sleep(0.3)
            targets = prometheus.targets()
        assert "401" in targets[0]["lastError"]
        assert prometheus.value('up{job="clickstream"}') == 0
