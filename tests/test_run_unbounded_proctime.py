"""A processing-time window on an unbounded source fires on the wall clock: `clickstream run`
writes a window's count once the clock passes its end, with no further input arriving."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys

import orjson

from clickstream.log import TopicLog
from tests.sink_polling import sink_total, wait_for_total

# The sink's rows appear as checkpoints commit them: at the default 10 s the test waited about
# 20 s for two of them; the windows fire on the clock alike.
JOB = """
SET 'execution.checkpointing.interval' = '500 ms';
CREATE TABLE events (user_id BIGINT, proc AS PROCTIME())
WITH ('connector' = 'log', 'path' = '{log}', 'topic' = 'events', 'format' = 'json');
CREATE TABLE per_second (window_start TIMESTAMP(3), n BIGINT)
WITH ('connector' = 'jdbc', 'url' = 'jdbc:sqlite:{db}', 'table-name' = 'per_second');
INSERT INTO per_second
SELECT window_start, COUNT(*) FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(proc), INTERVAL '1' SECOND))
GROUP BY window_start, window_end;
"""


def _append(log: TopicLog, count: int) -> None:
    log.append("events", [orjson.dumps({"user_id": i}) for i in range(count)])


def _total(db) -> int:
    return sink_total(db, "per_second")


def _wait_for(db, total: int, process: subprocess.Popen) -> None:
    wait_for_total(db, "per_second", total, process)


def test_processing_time_window_fires_without_further_input(tmp_path):
    log = TopicLog(tmp_path / "log")
    log.create_topic("events")
    db = tmp_path / "results.db"
    job = tmp_path / "job.sql"
    job.write_text(JOB.format(log=tmp_path / "log", db=db))
    _append(log, 50)
    process = subprocess.Popen(
        [sys.executable, "-m", "clickstream.cli", "run", "-q", str(job)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        _wait_for(db, 50, process)  # the rows' window closed on the clock: nothing else came
        _append(log, 20)
        _wait_for(db, 70, process)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM per_second WHERE n > 0").fetchone()[0] >= 2
