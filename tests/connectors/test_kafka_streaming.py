"""The `kafka` source in running jobs: watermarks per partition with idle partitions, partitions
added while the job runs, and a `clickstream run` job killed (SIGKILL) and started again, which
gives exactly the results of an uninterrupted run."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from confluent_kafka.admin import AdminClient, NewPartitions

from clickstream.connectors.base import PARTITION
from clickstream.connectors.kafka import KafkaSource
from tests.collecting import collect_until
from tests.connectors.kafka_helpers import (
    COLUMNS,
    committed,
    ddl,
    engine,
    event,
    poll_until,
    produce,
    read_topic,
    settings,
    table,
)
from tests.sink_polling import wait_for_total

pytestmark = pytest.mark.integration

WATERMARKED = COLUMNS + ", WATERMARK FOR ts AS ts - INTERVAL '5' SECOND"
PER_MINUTE = (
    "SELECT window_start, COUNT(*) FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) "
    "GROUP BY window_start, window_end"
)


@pytest.mark.parametrize(("idle", "windows"), [(None, 0), ("300 ms", 2)])
def test_an_idle_partition_holds_the_watermark_back_until_its_timeout(tmp_path, kafka_broker, idle, windows):
    topic = kafka_broker.new_topic(2)
    produce(kafka_broker.bootstrap, topic, [event(i) for i in range(180)], partition=0)  # 3 minutes
    options = {"scan.watermark.idle-timeout": idle} if idle else {}
    e = engine(tmp_path)
    e.execute_script(ddl("events", kafka_broker.bootstrap, topic, WATERMARKED, **options))
    # until every event is read and fed on (the watermark is set as each batch goes in) and the
    # windows the watermark passed are out: none more can close, the last event being at 3 minutes
    rows = collect_until(
        e, PER_MINUTE, lambda rows, job: job.status.records_in >= 180 and len(rows) >= windows
    )
    assert len(rows) == windows  # the minutes the watermark passed, with partition 1 idle
    assert all(n == 60 for _, (_, n) in rows)


def test_partitions_added_while_running_are_read(tmp_path, kafka_broker):
    topic = kafka_broker.new_topic(1)
    produce(kafka_broker.bootstrap, topic, [event(i) for i in range(10)])
    statement = ddl(
        "src", kafka_broker.bootstrap, topic, **{"scan.topic-partition-discovery.interval": "200 ms"}
    )
    source = KafkaSource(table(tmp_path, statement), settings(tmp_path))
    assert set(poll_until(source, 10).column(PARTITION).to_pylist()) == {0}
    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap})
    admin.create_partitions([NewPartitions(topic, 3)])[topic].result(timeout=30)
    produce(kafka_broker.bootstrap, topic, [event(i) for i in range(20)], partition=2)
    rows = poll_until(source, 20)
    assert set(rows.column(PARTITION).to_pylist()) == {2}
    assert source.lag_per_partition().get(2) in (0, None)
    source.close()


JOB = """
SET 'execution.checkpointing.interval' = '300 ms';
SET 'pipeline.name' = 'kafka-kill-test';
CREATE TABLE events ({columns})
WITH ('connector' = 'kafka', 'topic' = '{topic}', 'properties.bootstrap.servers' = '{bootstrap}',
      'format' = 'json', 'scan.startup.mode' = 'group-offsets', 'properties.group.id' = '{group}');
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


def _numbered(start: int, count: int) -> list[dict]:
    """Events one second apart, each with its own user_id."""
    return [{**event(i), "user_id": i, "behavior": ("pv", "buy")[i % 2]} for i in range(start, start + count)]


def _start(job: Path, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "clickstream.cli", "run", "-q", str(job)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )


def _rows(db: Path, name: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return sorted(conn.execute(f"SELECT * FROM {name}").fetchall())


def _count(db: Path, name: str) -> int:
    try:
        return len(_rows(db, name))
    except sqlite3.OperationalError:
        return 0


def test_killed_job_resumes_from_its_checkpoint_with_exactly_the_uninterrupted_results(
    tmp_path, kafka_broker
):
    topic = kafka_broker.new_topic(3)
    group = f"group-{topic}"
    db, job = tmp_path / "results.db", tmp_path / "job.sql"
    job.write_text(
        JOB.format(columns=WATERMARKED, topic=topic, bootstrap=kafka_broker.bootstrap, group=group, db=db)
    )
    produce(kafka_broker.bootstrap, topic, _numbered(0, 1500))
    first = _start(job, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while _count(db, "copied") < 300:  # some checkpoints in, the job mid-way or done
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            assert time.monotonic() < deadline, "the job wrote nothing"
            time.sleep(0.05)
        produce(kafka_broker.bootstrap, topic, _numbered(1500, 600))
        time.sleep(0.5)
        first.send_signal(signal.SIGKILL)  # no last checkpoint, no goodbye
        first.wait(timeout=20)
    finally:
        first.kill()
    assert (
        sum(committed(kafka_broker.bootstrap, group, topic, 3).values()) > 0
    )  # offsets followed checkpoints
    produce(kafka_broker.bootstrap, topic, _numbered(2100, 300))  # while the job is down
    second = _start(job, tmp_path)
    try:
        wait_for_total(db, "copied", 2400, second, timeout=90)
        wait_for_total(db, "per_behavior", 2400, second, timeout=30)
        deadline = time.monotonic() + 30
        while sum(committed(kafka_broker.bootstrap, group, topic, 3).values()) != 2400:
            assert time.monotonic() < deadline, "the group's offsets did not reach the end"
            time.sleep(0.2)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0, second.stderr.read() if second.stderr else ""
    finally:
        second.kill()
    assert _rows(db, "copied") == [(i, 1) for i in range(2400)]
    # every minute the watermark passed (the slowest partition's last event decides), counted once
    minutes = _rows(db, "per_minute")
    starts = [start for start, _ in minutes]
    assert len(set(starts)) == len(starts) >= 35 and {n for _, n in minutes} == {60}
    assert starts == [f"2024-01-01 00:{m:02d}:00.000" for m in range(len(starts))]
    assert _rows(db, "per_behavior") == [("buy", 1200), ("pv", 1200)]


EXACTLY_ONCE_JOB = """
SET 'execution.checkpointing.interval' = '300 ms';
SET 'pipeline.name' = 'kafka-exactly-once-test';
CREATE TABLE events ({columns})
WITH ('connector' = 'kafka', 'topic' = '{topic}', 'properties.bootstrap.servers' = '{bootstrap}',
      'format' = 'json', 'scan.startup.mode' = 'group-offsets', 'properties.group.id' = '{group}');
CREATE TABLE copied (user_id BIGINT, behavior STRING)
WITH ('connector' = 'kafka', 'topic' = '{out}', 'properties.bootstrap.servers' = '{bootstrap}',
      'format' = 'json', 'sink.delivery-guarantee' = 'exactly-once',
      'sink.transactional-id-prefix' = 'tx-{out}');
INSERT INTO copied SELECT user_id, behavior FROM events;
"""


def _copied(bootstrap: str, topic: str) -> list[int]:
    return sorted(orjson.loads(m.value())["user_id"] for m in read_topic(bootstrap, topic))


def test_exactly_once_sink_across_a_killed_job(tmp_path, kafka_broker):
    topic, out = kafka_broker.new_topic(3), kafka_broker.new_topic(2)
    job = tmp_path / "job.sql"
    job.write_text(
        EXACTLY_ONCE_JOB.format(
            columns=COLUMNS, topic=topic, bootstrap=kafka_broker.bootstrap, group=f"g-{topic}", out=out
        )
    )
    produce(kafka_broker.bootstrap, topic, _numbered(0, 1500))
    first = _start(job, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while len(_copied(kafka_broker.bootstrap, out)) < 300:  # checkpoints committed some
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            assert time.monotonic() < deadline, "the job committed nothing"
        produce(kafka_broker.bootstrap, topic, _numbered(1500, 600))
        time.sleep(0.5)
        first.send_signal(signal.SIGKILL)  # maybe mid-transaction: it stays open until aborted
        first.wait(timeout=20)
    finally:
        first.kill()
    produce(kafka_broker.bootstrap, topic, _numbered(2100, 300))
    second = _start(job, tmp_path)
    try:
        deadline = time.monotonic() + 90
        while len(copied := _copied(kafka_broker.bootstrap, out)) < 2400:
            assert second.poll() is None, second.stderr.read() if second.stderr else ""
            assert time.monotonic() < deadline, f"{len(copied)} of 2400 committed"
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0, second.stderr.read() if second.stderr else ""
    finally:
        second.kill()
    assert _copied(kafka_broker.bootstrap, out) == list(range(2400))  # each once, read_committed
