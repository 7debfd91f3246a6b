"""/metrics in the Prometheus text format, parsed back with prometheus_client's own parser."""

from __future__ import annotations

import math
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from clickstream.serve import create_app
from tests.serve.conftest import FakeJob, local_client, write

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_metrics_mirror_the_job_status(results_db: Path, fake_job: FakeJob) -> None:
    write(results_db, "INSERT INTO top_category VALUES (?, ?)", [("shoes", 3), ("books", 1)])
    samples = scrape(local_client(create_app(results_db, status=fake_job.status)))
    hourly = (("query", "buy_cnt_per_hour"),)
    assert samples["clickstream_records_in_total", hourly] == 100
    assert samples["clickstream_records_out_total", hourly] == 5
    assert samples["clickstream_late_records_dropped_total", hourly] == 2
    assert samples["clickstream_malformed_records_total", hourly] == 1
    assert samples["clickstream_watermark_seconds", hourly] == 1_511_740_800.0
    assert samples["clickstream_state_rows", hourly] == 7
    assert samples["clickstream_records_out_total", (("query", "cumulative_uv"),)] == 9
    # No watermark yet: the series is absent rather than a huge negative number.
    assert ("clickstream_watermark_seconds", (("query", "cumulative_uv"),)) not in samples
    assert samples["clickstream_results_rows", (("table", "top_category"),)] == 2
    assert samples["clickstream_results_rows", (("table", "buy_cnt_per_hour"),)] == 0
    assert samples["clickstream_job_attached", ()] == 1
    assert samples["clickstream_job_start_time_seconds", ()] == fake_job.started


def test_metrics_follow_the_job_between_scrapes(results_db: Path, fake_job: FakeJob) -> None:
    client = local_client(create_app(results_db, status=fake_job.status))
    fake_job.queries["buy_cnt_per_hour"]["records_in"] = 1234
    fake_job.queries["buy_cnt_per_hour"]["watermark"] = 2**63 - 1  # bounded input finished
    samples = scrape(client)
    hourly = (("query", "buy_cnt_per_hour"),)
    assert samples["clickstream_records_in_total", hourly] == 1234
    assert math.isinf(samples["clickstream_watermark_seconds", hourly])


def test_metrics_without_job_still_count_result_rows(results_db: Path) -> None:
    samples = scrape(local_client(create_app(results_db)))
    assert samples["clickstream_job_attached", ()] == 0
    assert samples["clickstream_results_rows", (("table", "cumulative_uv"),)] == 0
    assert not any(name.startswith("clickstream_records") for name, _ in samples)


def test_each_app_has_its_own_registry(results_db: Path, fake_job: FakeJob) -> None:
    attached = scrape(local_client(create_app(results_db, status=fake_job.status)))
    detached = scrape(local_client(create_app(results_db)))
    assert attached["clickstream_job_attached", ()] == 1 and detached["clickstream_job_attached", ()] == 0
    assert not any(name.startswith("python_") or name.startswith("process_") for name, _ in detached)
