"""An idle source stops holding back an operator that reads it beside an active one, as Flink's
watermark status IDLE does: a temporal join against a users topic nobody writes to any more keeps
joining the clicks that keep coming, once `table.exec.source.idle-timeout` has passed (seed 002's
users and codes tables, which are written once)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from clickstream.config import Settings
from clickstream.engine import Engine
from clickstream.runtime import watermarks
from clickstream.runtime.watermarks import WatermarkTracker
from clickstream.simulate.base import Record
from clickstream.simulate.outputs import LogOutput
from tests.collecting import collect_until
from tests.runtime.manual_time import ManualTime

START = datetime(2024, 1, 1, tzinfo=UTC)
MAX_CHUNKS, PER_CHUNK = 300, 5
JOIN = (
    "SELECT c.n, u.name FROM clicks AS c JOIN users FOR SYSTEM_TIME AS OF c.ts AS u ON c.user_id = u.user_id"
)


def _iso(seconds: int) -> str:
    return (START + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def _write(root: str, records: list[Record]) -> None:
    output = LogOutput("", ["users", "clicks"], root)
    for record in records:
        output.write(record)
    output.close()


def _feed_clicks(root: str, stop: threading.Event) -> None:
    """Clicks ten seconds apart, in chunks a fifth of a second apart until `stop` (or MAX_CHUNKS):
    the clicks never go idle, however long the job takes to start on a busy machine."""
    for chunk in range(MAX_CHUNKS):
        if stop.is_set():
            return
        first = chunk * PER_CHUNK
        clicks = [
            Record("clicks", {"n": n, "user_id": 1 + n % 2, "ts": _iso(10 * (n + 1))})
            for n in range(first, first + PER_CHUNK)
        ]
        _write(root, clicks)
        time.sleep(0.2)


def test_tracker_is_idle_once_every_partition_is_quiet(monkeypatch) -> None:
    clock = ManualTime()
    monkeypatch.setattr(watermarks, "time", clock)
    tracker = WatermarkTracker(partitions=2, idle_timeout_ms=1_000)
    tracker.assign(pa.array([100, 100], pa.int64()), pa.array([0, 1], pa.int32()))
    clock.advance(0.999)
    assert not tracker.idle
    clock.advance(0.001)
    assert tracker.idle
    assert not WatermarkTracker(partitions=1).idle  # without a timeout nothing is idle


def test_a_quiet_versioned_table_does_not_hold_back_the_temporal_join(tmp_path) -> None:
    root = str(tmp_path)
    users = [{"user_id": u, "name": name, "since": _iso(0)} for u, name in ((1, "ann"), (2, "bob"))]
    _write(root, [Record("users", row, str(row["user_id"])) for row in users])
    engine = Engine(Settings({"table.exec.source.idle-timeout": "300 ms"}))
    engine.execute_script(
        f"""
        CREATE TABLE users (user_id INT, name STRING, since TIMESTAMP_LTZ(3),
            PRIMARY KEY (user_id) NOT ENFORCED, WATERMARK FOR since AS since)
        WITH ('connector' = 'log', 'path' = '{root}', 'topic' = 'users', 'format' = 'json');
        CREATE TABLE clicks (n INT, user_id INT, ts TIMESTAMP_LTZ(3), WATERMARK FOR ts AS ts)
        WITH ('connector' = 'log', 'path' = '{root}', 'topic' = 'clicks', 'format' = 'json');
        """
    )
    stop = threading.Event()
    feeder = threading.Thread(target=_feed_clicks, args=(root, stop), daemon=True)
    feeder.start()
    try:
        changes = collect_until(engine, JOIN, lambda changes, _: len(changes) >= 3 * PER_CHUNK)
    finally:
        stop.set()
        feeder.join()
    rows = [row for _, row in changes]
    # clicks are joined although the users' watermark (00:00) never moves: without idleness none is
    assert len(rows) >= 3 * PER_CHUNK
    assert all(name == ("bob" if n % 2 else "ann") for n, name in rows)


def test_when_every_input_is_idle_the_latest_watermark_wins(tmp_path) -> None:
    """The clicks go quiet first, then the users table: with both idle, neither will move on, so
    the join's watermark is the newer of the two, as Flink's valve flushes the max across its
    inputs once all are idle; before, it stayed at the users' (their registration) and the clicks
    were never joined (seed 002's demo, when the job read both topics within the idle timeout)."""
    root = str(tmp_path)
    users = [
        Record("users", {"user_id": u, "name": n, "since": _iso(0)}, str(u))
        for u, n in ((1, "ann"), (2, "bob"))
    ]
    _write(root, users)
    _write(
        root, [Record("clicks", {"n": n, "user_id": 1 + n % 2, "ts": _iso(10 * (n + 1))}) for n in range(20)]
    )
    engine = Engine(Settings({"table.exec.source.idle-timeout": "300 ms"}))
    engine.execute_script(
        f"""
        CREATE TABLE users (user_id INT, name STRING, since TIMESTAMP_LTZ(3),
            PRIMARY KEY (user_id) NOT ENFORCED, WATERMARK FOR since AS since)
        WITH ('connector' = 'log', 'path' = '{root}', 'topic' = 'users', 'format' = 'json');
        CREATE TABLE clicks (n INT, user_id INT, ts TIMESTAMP_LTZ(3), WATERMARK FOR ts AS ts)
        WITH ('connector' = 'log', 'path' = '{root}', 'topic' = 'clicks', 'format' = 'json');
        """
    )
    # the same users again a little later: the users topic goes idle after the clicks
    later = threading.Timer(1.0, _write, (root, users))
    later.start()
    try:
        # until every click is joined and the users were written again
        changes = collect_until(
            engine, JOIN, lambda changes, _: len(changes) >= 20 and later.finished.is_set()
        )
    finally:
        later.cancel()
        later.join()
    assert sorted(n for _, (n, _) in changes) == list(range(20))
