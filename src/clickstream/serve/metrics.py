"""Prometheus `/metrics`: the status page's figures in the text exposition format.

A custom collector reads the job's status and the results file at scrape time, so the numbers are
never stale and nothing has to be pushed into counters. Each app has its own `CollectorRegistry`:
several apps in one process (tests) must not see each other's series.

A results file that cannot be read does not fail the scrape: the job's figures are still good, so
they are served with `clickstream_results_readable 0` and no `clickstream_results_rows` series
(the reason goes to the log, one line). Row counts over `COUNT_EXACT_MAX` are estimates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from clickstream.serve.results import ResultsDB, ResultsUnavailable
from clickstream.serve.status import JobStatusDict, watermark_seconds

__all__ = ["CONTENT_TYPE_LATEST", "ClickstreamCollector", "make_registry", "render"]

log = logging.getLogger(__name__)

_COUNTERS = (
    ("records_in", "clickstream_records_in", "Records that entered the query."),
    ("records_out", "clickstream_records_out", "Records the query emitted to its sink."),
    ("late_dropped", "clickstream_late_records_dropped", "Late events dropped: their window had fired."),
    ("malformed", "clickstream_malformed_records", "Source records that could not be decoded."),
)


class ClickstreamCollector(Collector):
    def __init__(self, results: ResultsDB | None, status: Callable[[], JobStatusDict] | None) -> None:
        self.results = results
        self.status = status

    def collect(self) -> Iterator[Metric]:
        yield from self._job_metrics()
        if self.results is not None:
            yield from self._results_metrics(self.results)

    def _results_metrics(self, results: ResultsDB) -> Iterator[Metric]:
        readable = GaugeMetricFamily(
            "clickstream_results_readable", "1 when the results file could be read (or does not exist yet)."
        )
        try:
            counts = results.row_counts()
        except ResultsUnavailable as e:
            log.warning("/metrics: %s", e)
            readable.add_metric([], 0)
            yield readable
            return
        readable.add_metric([], 1)
        yield readable
        rows = GaugeMetricFamily(
            "clickstream_results_rows",
            "Rows in a result table (estimated from rowids above 100,000 rows).",
            labels=["table"],
        )
        for table, count in counts.items():
            rows.add_metric([table], count)
        yield rows

    def _job_metrics(self) -> Iterator[Metric]:
        status = self.status() if self.status is not None else None
        attached = GaugeMetricFamily("clickstream_job_attached", "1 when a running job reports its status.")
        attached.add_metric([], 1 if status is not None else 0)
        yield attached
        if status is None:
            return
        started = GaugeMetricFamily("clickstream_job_start_time_seconds", "When the job started, epoch s.")
        started.add_metric([], float(status["started"]))
        yield started
        queries = status["queries"]
        for key, name, doc in _COUNTERS:
            family = CounterMetricFamily(name, doc, labels=["query"])
            for query, q in queries.items():
                family.add_metric([query], float(q[key]))  # type: ignore[literal-required]
            yield family
        yield _watermarks(queries)
        state = GaugeMetricFamily("clickstream_state_rows", "Rows held in operator state.", labels=["query"])
        for query, q in queries.items():
            if "state_rows" in q:
                state.add_metric([query], float(q["state_rows"]))
        yield state
        lag = GaugeMetricFamily(
            "clickstream_source_lag_records",
            "Records appended to the query's log sources, not read yet.",
            labels=["query"],
        )
        for query, q in queries.items():
            if "lag" in q:
                lag.add_metric([query], float(q["lag"]))
        yield lag
        waiting = GaugeMetricFamily(
            "clickstream_waiting_for_database",
            "Sinks and lookups of the query waiting for their database to come back.",
            labels=["query"],
        )
        for query, q in queries.items():
            if "waiting" in q:
                waiting.add_metric([query], float(q["waiting"]))
        yield waiting
        yield _partition_lags(status["sources"])
        yield from _checkpoint_metrics(status.get("checkpoints"))


def _partition_lags(sources: dict) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "clickstream_source_partition_lag_records",
        "Records appended to a partition of a log source, not read yet.",
        labels=["source", "partition"],
    )
    for source, s in sources.items():
        for partition, lag in s.get("lag", {}).items():
            family.add_metric([source, partition], float(lag))
    return family


def _checkpoint_metrics(checkpoints: dict | None) -> Iterator[Metric]:
    if not checkpoints:
        return
    for key, name, doc in (
        ("last_id", "clickstream_last_checkpoint_id", "The id of the job's last complete checkpoint."),
        ("duration_ms", "clickstream_last_checkpoint_duration_ms", "How long the last checkpoint took."),
        ("bytes", "clickstream_last_checkpoint_size_bytes", "The size of the last checkpoint on disk."),
    ):
        family = GaugeMetricFamily(name, doc)
        family.add_metric([], float(checkpoints[key]))
        yield family


def _watermarks(queries: dict) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "clickstream_watermark_seconds",
        "Current event-time watermark, epoch s (+Inf once bounded input is done; absent before any).",
        labels=["query"],
    )
    for query, q in queries.items():
        seconds = watermark_seconds(int(q["watermark"]))
        if seconds is not None:
            family.add_metric([query], seconds)  # +Inf once bounded input is done
    return family


def make_registry(results: ResultsDB | None, status: Callable[[], JobStatusDict] | None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ClickstreamCollector(results, status))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
