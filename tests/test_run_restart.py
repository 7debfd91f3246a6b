"""`clickstream run` stopped (SIGTERM) and started again on an unbounded log source resumes from
its checkpoint: the consumer group's offsets are committed, and neither the append sink nor the
window sink counts anything twice (issue 12's measured case: 130,000 rows written twice)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import orjson

from clickstream.log import TopicLog
from clickstream.log.groups import GroupOffsets
from tests.sink_polling import wait_for_total

JOB = """
SET 'execution.checkpointing.interval' = '200 ms';
SET 'pipeline.name' = 'restart-test';
CREATE TABLE events (user_id BIGINT, behavior STRING, ts TIMESTAMP_LTZ(3),
    WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
WITH ('connector' = 'log', 'path' = '{log}', 'topic' = 'events', 'format' = 'json',
      'scan.startup.mode' = 'group-offsets', 'properties.group.id' = 'restart-test');
CREATE TABLE copied (user_id BIGINT, n BIGINT)
WITH ('connector' = 'jdbc', 'url' = 'jdbc:sqlite:{db}', 'table-name' = 'copied');
CREATE TABLE per_minute (minute_start TIMESTAMP(3), n BIGINT)
WITH ('connector' = 'jdbc', 'url' = 'jdbc:sqlite:{db}', 'table-name' = 'per_minute');
CREATE TABLE per_behavior (behavior STRING PRIMARY KEY NOT ENFORCED, n BIGINT)
WITH ('connector' = 'jdbc', 'url' = 'jdbc:sqlite:{db}', 'table-name' = 'per_behavior');
INSERT INTO copied SELECT user_id, 1 FROM events;
INSERT INTO per_minute SELECT window_start, COUNT(*) FROM TABLE(
    TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end;
INSERT INTO per_behavior SELECT behavior, COUNT(*) FROM events GROUP BY behavior;
"""


def _append(log: TopicLog, start: int, count: int) -> None:
    """Events one second apart from 00:00:00, `start` on."""
    values = [
        orjson.dumps({"user_id": i, "behavior": ["pv", "buy"][i % 2], "ts": f"2024-01-01T{_clock(i)}Z"})
        for i in range(start, start + count)
    ]
    log.append("events", values)


def _clock(second: int) -> str:
    return f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"


def _start(job: Path, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "clickstream.cli", "run", "-q", str(job)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0, process.stderr.read() if process.stderr else ""


def _rows(db: Path, table: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return sorted(conn.execute(f"SELECT * FROM {table}").fetchall())


def test_stopped_and_restarted_run_counts_everything_once(tmp_path: Path) -> None:
    log = TopicLog(tmp_path / "log")
    log.create_topic("events")
    db, job = tmp_path / "results.db", tmp_path / "job.sql"
    job.write_text(JOB.format(log=tmp_path / "log", db=db))
    _append(log, 0, 1500)
    first = _start(job, tmp_path)
    try:
        wait_for_total(db, "copied", 1500, first)  # append rows come at checkpoints
        _stop(first)
    finally:
        first.kill()
    committed = GroupOffsets(log.topic_dir("events"), "restart-test").load()
    assert committed == {0: 1500}
    _append(log, 1500, 900)  # while the job is down
    second = _start(job, tmp_path)
    try:
        wait_for_total(db, "copied", 2400, second)
        wait_for_total(db, "per_behavior", 2400, second)
        _stop(second)
    finally:
        second.kill()
    assert _rows(db, "copied") == [(i, 1) for i in range(2400)]
    # every minute the watermark passed is counted once: 2400 events, 60 a minute
    minutes = _rows(db, "per_minute")
    assert len(minutes) == 39 and {n for _, n in minutes} == {60}
    assert _rows(db, "per_behavior") == [("buy", 1200), ("pv", 1200)]
