"""`clickstream run` on an unbounded source (the embedded log): results reach the sink while it
runs, and SIGTERM / SIGINT stop it cleanly (exit 0)."""

from __future__ import annotations

import signal
import subprocess
import sys

import orjson
import pytest

from clickstream.log import TopicLog
from tests.sink_polling import sink_total, wait_for_total

JOB = """
CREATE TABLE events (user_id BIGINT, behavior STRING, ts TIMESTAMP_LTZ(3),
    WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
WITH ('connector' = 'log', 'path' = '{log}', 'topic' = 'events', 'format' = 'json');
CREATE TABLE per_behavior (behavior STRING PRIMARY KEY NOT ENFORCED, n BIGINT)
WITH ('connector' = 'jdbc', 'url' = 'jdbc:sqlite:{db}', 'table-name' = 'per_behavior');
INSERT INTO per_behavior SELECT behavior, COUNT(*) FROM events GROUP BY behavior;
"""


def _append(log: TopicLog, start: int, count: int) -> None:
    values = [
        orjson.dumps(
            {
                "user_id": i,
                "behavior": ["pv", "buy"][i % 2],
                "ts": f"2024-01-01T00:{(i // 60) % 60:02d}:{i % 60:02d}Z",
            }
        )
        for i in range(start, start + count)
    ]
    log.append("events", values)


def _total(db) -> int:
    return sink_total(db, "per_behavior")


def _wait_for(db, total: int, process: subprocess.Popen) -> None:
    wait_for_total(db, "per_behavior", total, process)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_unbounded_run_stops_cleanly(tmp_path, stop):
    log = TopicLog(tmp_path / "log")
    log.create_topic("events")
    db = tmp_path / "results.db"
    job = tmp_path / "job.sql"
    job.write_text(JOB.format(log=tmp_path / "log", db=db))
    _append(log, 0, 500)
    process = subprocess.Popen(
        [sys.executable, "-m", "clickstream.cli", "run", "-q", str(job)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        _wait_for(db, 500, process)  # visible while the job runs
        _append(log, 500, 300)
        _wait_for(db, 800, process)
        process.send_signal(stop)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert _total(db) == 800
