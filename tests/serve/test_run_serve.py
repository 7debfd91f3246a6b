"""`clickstream run --serve`: the running job's status page, REST API and /metrics, from a subprocess
fed while it runs; Ctrl-C exits 0."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import httpx

from clickstream.serve.job_server import sqlite_path
from tests.serve.served_job import COPY_QUERY, event_time_s, served_job


def test_run_serve_reports_the_running_job(tmp_path: Path) -> None:
    with served_job(tmp_path) as job:
        job.append(300)
        first = job.wait_for_records(300)
        assert first["attached"] is True
        copy = first["queries"][COPY_QUERY]
        # the watermark is the minimum over partitions: events 298 (p0) and 299 (p1), less 5 s
        assert copy["watermark"] == (event_time_s(298) - 5) * 1000
        assert first["sources"]["events"]["lag"] == {"0": 0, "1": 0}
        metrics = job.metrics()
        copy_label = (("query", COPY_QUERY),)
        assert metrics["clickstream_job_attached", ()] == 1
        assert metrics["clickstream_records_in_total", copy_label] == 300
        assert metrics["clickstream_watermark_seconds", copy_label] == event_time_s(298) - 5
        assert (
            metrics["clickstream_source_partition_lag_records", (("partition", "1"), ("source", "events"))]
            == 0
        )

        job.append(200)  # the figures move while it runs
        job.wait_for_records(500)
        later = job.metrics()
        assert later["clickstream_records_in_total", copy_label] == 500
        assert later["clickstream_watermark_seconds", copy_label] == event_time_s(498) - 5
        # the results file the job writes is served too: its tables and rows
        job.wait_for(lambda s: s["results"].get("copied") == 500, "500 rows in copied")
        tables = job.get("/api/tables").json()["tables"]
        assert {t["name"] for t in tables} == {"copied", "per_behavior"}
        rows = job.get("/api/tables/per_behavior", order_by="behavior")
        assert rows.json()["rows"] == [
            {"behavior": "buy", "n": 167},
            {"behavior": "cart", "n": 166},
            {"behavior": "pv", "n": 167},
        ]
        assert "clickstream run · pipeline status" in job.get("/status").text
        assert job.interrupt() == 0, job.output()
    assert "results from" in job.output()


def test_run_serve_beyond_loopback_needs_the_printed_token(tmp_path: Path) -> None:
    with served_job(tmp_path, host="0.0.0.0") as job:
        assert job.token, job.output()  # generated and printed, as Jupyter does
        assert "anyone who can reach this machine" in job.output()
        refused = httpx.get(f"{job.url}/api/status", timeout=10)
        assert refused.status_code == 401
        assert job.status()["attached"] is True  # with the token
        assert job.interrupt() == 0, job.output()


def test_run_serve_on_a_busy_port_says_so(tmp_path: Path) -> None:
    script = tmp_path / "job.sql"
    script.write_text(
        "CREATE TABLE s (n BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');"
        "CREATE TABLE t (n BIGINT) WITH ('connector' = 'blackhole');"
        "INSERT INTO t SELECT n FROM s;"
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        command = [sys.executable, "-m", "clickstream.cli", "run", "-q", "--serve", "--port", str(port)]
        done = subprocess.run(
            [*command, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
        )
    assert done.returncode == 1, done.stderr
    assert f"cannot serve on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr
    assert "Traceback" not in done.stderr


def test_sqlite_path_of_jdbc_urls() -> None:
    assert sqlite_path("jdbc:sqlite:data/results.db") == Path("data/results.db")
    assert sqlite_path("jdbc:sqlite:/tmp/r.db?journal_mode=wal") == Path("/tmp/r.db")
    assert sqlite_path("jdbc:sqlite:file:/tmp/r%20s.db?mode=rwc") == Path("/tmp/r s.db")
    assert sqlite_path("jdbc:sqlite::memory:") is None
    assert sqlite_path("jdbc:postgresql://localhost/test") is None
